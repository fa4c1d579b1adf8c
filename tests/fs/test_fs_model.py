"""Property-based: random sequences of file commands against a fresh scratch DF on the card and
against the Python model (tests/fsmodel.py); every response, status word and data, must agree."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.fs.client import Structure
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fsmodel import EF, FsModel, scratch_df

pytestmark = pytest.mark.e2e

# Small files, so that random offsets and record numbers hit every edge.
FID_T, FID_F, FID_V, FID_C = 0x0A01, 0x0A02, 0x0A03, 0x0A04


def fresh_model(df_fid: int) -> FsModel:
    return FsModel(df_fid, [
        EF(FID_T, 1, Structure.TRANSPARENT, 40),
        EF(FID_F, 2, Structure.LINEAR_FIXED, 24, record_size=6, capacity=4),
        EF(FID_V, 3, Structure.LINEAR_VARIABLE, 30, record_size=8),
        EF(FID_C, 4, Structure.CYCLIC, 15, record_size=5, capacity=3),
    ])


# SFI 0 addresses the current EF; 7 names no file. Mostly real files, and mostly right sizes, so
# that sequences get deep into the records (full files, wrapped rings) instead of failing early.
sfis = st.sampled_from([0, 0, 0, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 7])
le = st.one_of(st.none(), st.integers(1, 48), st.just(256), st.just(256))


def record_data(draw, sfi: int) -> bytes:
    sizes = {2: [6], 3: [1, 2, 3, 5, 8], 4: [5]}.get(sfi, [5, 6])
    if draw(st.integers(0, 9)) == 0:
        sizes = [0, 4, 7, 9]  # wrong for some file
    size = draw(st.sampled_from(sizes))
    return draw(st.binary(min_size=size, max_size=size))


def binary_p1p2(sfi: int, offset: int) -> tuple[int, int]:
    if sfi:
        return 0x80 | sfi, offset & 0xFF
    return (offset >> 8) & 0x7F, offset & 0xFF


@st.composite
def commands(draw) -> CommandAPDU:
    kind = draw(st.sampled_from(["select", "select", "select_df", "read_binary", "update_binary", "write_binary",
                                 "read_record", "read_record", "read_record", "read_records", "update_record",
                                 "write_record", "append", "append", "append", "append", "search"]))
    sfi = draw(sfis)
    if kind == "select":
        fid = draw(st.sampled_from([FID_T, FID_F, FID_V, FID_C, 0x0A09]))
        # the FCP / FCI with a random Le: 6Cxx must select nothing (the re-sent SELECT then succeeds)
        p2 = draw(st.sampled_from([0x0C, 0x0C, 0x04, 0x00]))
        return CommandAPDU(0x00, 0xA4, 0x02, p2, fid.to_bytes(2, "big"), le=None if p2 == 0x0C else draw(le))
    if kind == "select_df":
        return CommandAPDU(0x00, 0xA4, 0x00, 0x0C, b"")  # the DF's FID is filled in by the test
    if kind.endswith("binary"):
        if draw(st.booleans()):
            sfi = 1
        p1, p2 = binary_p1p2(sfi, draw(st.integers(0, 44)))
        if draw(st.integers(0, 19)) == 0:
            p1 |= 0xE0 if p1 & 0x80 else 0  # SFI form with b7-b6 set: 6A86
        if kind == "read_binary":
            return CommandAPDU(0x00, 0xB0, p1, p2, le=draw(le))
        ins = 0xD6 if kind == "update_binary" else 0xD0
        return CommandAPDU(0x00, ins, p1, p2, draw(st.binary(min_size=0, max_size=12)))
    p2_sfi = sfi << 3
    if kind == "read_record":
        mode = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 7]))
        p1 = draw(st.sampled_from([0, 1, 2, 3, 4, 5])) if mode == 4 or draw(st.integers(0, 9)) == 0 else 0
        return CommandAPDU(0x00, 0xB2, p1, p2_sfi | mode, le=draw(st.sampled_from([256, 256, 256, 5, 6, 8])))
    if kind == "read_records":
        mode = draw(st.sampled_from([5, 6]))
        return CommandAPDU(0x00, 0xB2, draw(st.integers(0, 5)), p2_sfi | mode, le=draw(le))
    if kind in ("update_record", "write_record"):
        mode = draw(st.integers(0, 4))
        p1 = draw(st.sampled_from([0, 1, 2, 3])) if mode == 4 else draw(st.sampled_from([0, 0, 0, 1]))
        return CommandAPDU(0x00, 0xDC if kind == "update_record" else 0xD2, p1, p2_sfi | mode,
                           record_data(draw, sfi))
    if kind == "append":
        p1 = 1 if draw(st.integers(0, 19)) == 0 else 0
        return CommandAPDU(0x00, 0xE2, p1, p2_sfi, record_data(draw, sfi))
    mode = draw(st.sampled_from([4, 4, 5, 5, 6]))
    return CommandAPDU(0x00, 0xA2, draw(st.sampled_from([0, 0, 1, 2, 4])), p2_sfi | mode,
                       draw(st.binary(min_size=0, max_size=2)), le=draw(st.sampled_from([256, 256, 1])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(commands(), min_size=20, max_size=80))
def test_random_command_sequences_match_the_model(card, sequence: list[CommandAPDU]) -> None:
    model_efs = fresh_model(0)
    with scratch_df(card, *(ef.fcp() for ef in model_efs.efs)) as (fs, df_fid):
        model = fresh_model(df_fid)
        for step, drawn in enumerate(sequence):
            command = drawn
            if drawn.ins == 0xA4 and drawn.p1 == 0x00:
                command = CommandAPDU(0x00, 0xA4, 0x00, 0x0C, df_fid.to_bytes(2, "big"))
            expected = model.run(command)
            response = card.exchange(command)
            assert (response.data, response.sw) == expected, (
                f"step {step}: {command.to_bytes().hex().upper()} → card {response.data.hex().upper()} "
                f"{response.sw:04X}, model {expected[0].hex().upper()} {expected[1]:04X}")
        # and the final content, read through the typed client
        for ef in model.efs:
            if ef.structure is Structure.TRANSPARENT:
                assert fs.read_binary(0, ef.size, sfi=ef.sfi) == bytes(ef.data)
            else:
                assert fs.read_all_records(sfi=ef.sfi) == ef.records
