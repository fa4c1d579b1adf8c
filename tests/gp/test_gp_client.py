"""The GlobalPlatform client against a scripted card manager: the secure channel handshake replaying the
published SCP03 session of osmocom/pysim (tests/unittests/test_globalplatform.py, AES-128, level 11), the
brick guard, GET STATUS in both formats with 6310 continuation, GET DATA decoding, the INSTALL/LOAD/DELETE/
SET STATUS command encodings and the status word messages. No simulator needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.gp.client import (
    STATUS_APPLICATIONS,
    STATUS_ISD,
    STATUS_LOAD_FILES_AND_MODULES,
    AuthenticationError,
    CardManagerError,
    Cplc,
    GlobalPlatform,
    GPError,
    PartRefused,
    encode_privileges,
    parse_card_data,
    parse_key_info,
    privilege_names,
)
from cardsuite.gp.guard import BrickGuard, BrickGuardError
from cardsuite.gp.scp import CardCryptogramError, KeySet, SecurityLevel
from cardsuite.tlv import encode_tlv
from cardsuite.trace import Trace
from cardsuite.transport.base import Transport

h = bytes.fromhex
KEYS = KeySet(h("000102030405060708090a0b0c0d0e0f"), h("101112131415161718191a1b1c1d1e1f"),
              h("202122232425262728292a2b2c2d2e2f"), kvn=0x30)
HOST_CHALLENGE = h("b13e5f938fc108c4")
INIT_UPDATE_RESPONSE = h("000000000000000000003003703eb51047495b249f66c484c1d2ef1948000002")
EXTERNAL_AUTHENTICATE = h("84821100107d5f5826a993ebc89eea24957fa0b3ce")
CPLC = bytes(range(42))
ISD = h("A000000151000000")
CARD_DATA = h("664C734A06072A864886FC6B01600C060A2A864886FC6B02020201630906072A864886FC6B03640B06092A864886FC6B"
              "040255650B06092A864886FC6B020103660C060A2B060104012A026E0102")  # SCP02 i=55


class ScriptedCardManager(Transport):
    """Answers like an ISD would for the commands these tests send. Authentication succeeds only for the
    exact EXTERNAL AUTHENTICATE of the published session (the host challenge is fixed by the test)."""

    name = "scripted"

    def __init__(self, refuse_auth: bool = False, cplc: bytes | None = CPLC) -> None:
        super().__init__()
        self.refuse_auth = refuse_auth
        self.cplc = cplc
        self.sent: list[CommandAPDU] = []
        self.auth_attempts = 0
        self.answers: dict[tuple[int, int, int], list[ResponseAPDU]] = {}

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def reset(self) -> bytes:
        return self.atr

    @property
    def atr(self) -> bytes:
        return h("3B8080018080")

    def queue(self, ins: int, p1: int, p2: int, *responses: ResponseAPDU) -> None:
        self.answers.setdefault((ins, p1, p2), []).extend(responses)

    def transmit_raw(self, command: bytes) -> bytes:
        apdu = CommandAPDU.from_bytes(command)
        self.sent.append(apdu)
        return self.answer(apdu).to_bytes()

    def answer(self, apdu: CommandAPDU) -> ResponseAPDU:
        key = (apdu.ins, apdu.p1, apdu.p2)
        if self.answers.get(key):
            return self.answers[key].pop(0)
        if apdu.ins == 0xA4:
            return ResponseAPDU(b"\x6f\x00", 0x9000) if apdu.data == ISD else ResponseAPDU(b"", 0x6A82)
        if apdu.ins == 0xCA and (apdu.p1, apdu.p2) == (0x9F, 0x7F):
            return ResponseAPDU(h("9F7F2A") + self.cplc, 0x9000) if self.cplc else ResponseAPDU(b"", 0x6A88)
        if apdu.ins == 0xCA:
            return ResponseAPDU(b"", 0x6A88)
        if apdu.ins == 0x50:
            return ResponseAPDU(INIT_UPDATE_RESPONSE, 0x9000)
        if apdu.ins == 0x82:
            self.auth_attempts += 1
            ok = apdu.to_bytes() == EXTERNAL_AUTHENTICATE and not self.refuse_auth
            return ResponseAPDU(b"", 0x9000 if ok else 0x6300)
        return ResponseAPDU(b"\x00", 0x9000)


@pytest.fixture
def guard(tmp_path: Path) -> BrickGuard:
    return BrickGuard(tmp_path / "guard.db")


def _open(gp: GlobalPlatform, keys: KeySet = KEYS, force: bool = False) -> None:
    gp.open_secure_channel(keys, SecurityLevel.C_MAC | SecurityLevel.R_MAC, force=force, host_challenge=HOST_CHALLENGE)


# ---------------------------------------------------------------- handshake and brick guard


def test_handshake_replays_the_published_session(guard: BrickGuard) -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card, guard=guard)
    _open(gp)
    assert card.auth_attempts == 1 and gp.channel is not None and gp.channel.scp == 3
    assert guard.failures() == []


def test_wrong_keys_stop_before_external_authenticate_and_engage_the_guard(guard: BrickGuard) -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card, guard=guard)
    wrong = KeySet.single(bytes(range(0x40, 0x50)), 0x30)
    with pytest.raises(CardCryptogramError, match="wrong keys"):
        _open(gp, wrong)
    assert card.auth_attempts == 0  # the host never answers a card it cannot authenticate
    [failure] = guard.failures()
    assert failure.card == Cplc(CPLC).identity and failure.kvn == 0x30
    assert "4041" not in failure.keys  # a fingerprint, not the key

    sent = len(card.sent)
    with pytest.raises(BrickGuardError, match="already failed on this card.*--retry-auth"):
        _open(gp, wrong)
    assert not any(c.ins == 0x50 for c in card.sent[sent:])  # refused before INITIALIZE UPDATE
    # other keys on the same card are not blocked, and success clears nothing else
    _open(gp)
    assert len(guard.failures()) == 1


def test_card_refusing_external_authenticate_is_recorded_and_force_retries(guard: BrickGuard) -> None:
    card = ScriptedCardManager(refuse_auth=True)
    gp = GlobalPlatform(card, guard=guard)
    with pytest.raises(AuthenticationError, match="EXTERNAL AUTHENTICATE failed: card answered 6300") as caught:
        _open(gp)
    assert caught.value.sw == 0x6300
    with pytest.raises(BrickGuardError):
        _open(gp)
    assert card.auth_attempts == 1
    card.refuse_auth = False
    _open(gp, force=True)  # told explicitly: tries, succeeds, and the record is gone
    assert card.auth_attempts == 2 and guard.failures() == []


def test_a_refused_external_authenticate_stops_the_commands_sent_with_it(guard: BrickGuard) -> None:
    """registry(authenticate=…) sends the registry's GET STATUS in EXTERNAL AUTHENTICATE's run: refused, it
    raises as when sent alone, the brick guard records it, and no GET STATUS reached the card."""
    card = RunCounting(refuse_auth=True)
    gp = GlobalPlatform(card, guard=guard)
    with pytest.raises(AuthenticationError, match="EXTERNAL AUTHENTICATE failed: card answered 6300"):
        gp.registry(authenticate=lambda: gp.open_secure_channel(KEYS, SecurityLevel.C_MAC,
                                                                host_challenge=HOST_CHALLENGE))
    assert card.handed[-1] == [0x82, 0xF2, 0xF2, 0xF2] and card.sent[-1].ins == 0x82
    assert gp.channel is None and len(guard.failures()) == 1
    with pytest.raises(BrickGuardError):
        gp.registry(authenticate=lambda: gp.open_secure_channel(KEYS, SecurityLevel.C_MAC))
    assert card.auth_attempts == 1 and not any(c.ins == 0xF2 for c in card.sent)


def test_guard_identifies_a_card_without_cplc_by_reader_and_atr(guard: BrickGuard) -> None:
    card = ScriptedCardManager(refuse_auth=True, cplc=None)
    gp = GlobalPlatform(card, guard=guard)
    with pytest.raises(AuthenticationError):
        _open(gp)
    assert guard.failures()[0].card == "reader:scripted|atr:3B8080018080"


def test_guard_state_survives_a_new_process(tmp_path: Path) -> None:
    card = ScriptedCardManager(refuse_auth=True)
    with pytest.raises(AuthenticationError):
        _open(GlobalPlatform(card, guard=BrickGuard(tmp_path / "g.db")))
    with pytest.raises(BrickGuardError):
        _open(GlobalPlatform(card, guard=BrickGuard(tmp_path / "g.db")))


def test_blocked_card_is_an_authentication_error(guard: BrickGuard) -> None:
    card = ScriptedCardManager()
    card.queue(0x50, 0x30, 0x00, ResponseAPDU(b"", 0x6983))
    with pytest.raises(AuthenticationError, match="6983 \\(authentication blocked"):
        _open(GlobalPlatform(card, guard=guard))
    assert guard.failures()[0].sw == 0x6983


def test_unknown_key_version_is_an_error_and_guarded(guard: BrickGuard) -> None:
    """6A88 is not a wrong cryptogram, but a card may count the INITIALIZE UPDATE: the guard records it too."""
    card = ScriptedCardManager()
    card.queue(0x50, 0x30, 0x00, ResponseAPDU(b"", 0x6A88))
    with pytest.raises(GPError, match="INITIALIZE UPDATE \\(key version 0x30\\) failed: card answered 6A88 "
                       "\\(referenced data not found \\(no such key set") as caught:
        _open(GlobalPlatform(card, guard=guard))
    assert not isinstance(caught.value, AuthenticationError) and guard.failures()[0].sw == 0x6A88


def test_failures_the_card_does_not_count_are_not_recorded(guard: BrickGuard) -> None:
    """The guard records what moves the card's counter, nothing else: another protocol than the one asked for
    (found before EXTERNAL AUTHENTICATE) or INITIALIZE UPDATE refused as unknown (6D00) leave no record."""
    card = ScriptedCardManager()
    gp = GlobalPlatform(card, guard=guard)
    with pytest.raises(CardManagerError, match="SCP03 for key version 0x30, SCP02 was asked for"):
        gp.open_secure_channel(KEYS, scp=2, host_challenge=HOST_CHALLENGE)
    card.queue(0x50, 0x30, 0x00, ResponseAPDU(b"", 0x6D00))
    with pytest.raises(GPError, match="6D00"):
        _open(gp)
    assert guard.failures() == [] and card.auth_attempts == 0
    _open(gp)  # and nothing stands in the way of the right keys


def test_end_session_forgets_the_channel_and_the_isd_selection(guard: BrickGuard) -> None:
    """A caller selecting another application (deploy, reading a wallet) ends the card manager's session:
    nothing is wrapped for the old channel any more, and the next card manager command selects the ISD."""
    card = ScriptedCardManager()
    gp = GlobalPlatform(card, guard=guard)
    _open(gp)
    gp.end_session()
    assert gp.channel is None and gp.selected is None
    sent = len(card.sent)
    assert gp.card_identity() == Cplc(CPLC).identity
    select, get_cplc = card.sent[sent:]
    assert (select.ins, select.data) == (0xA4, ISD) and (get_cplc.cla, get_cplc.ins) == (0x80, 0xCA)


def test_no_card_manager() -> None:
    with pytest.raises(GPError, match="no card manager answers"):
        GlobalPlatform(ScriptedCardManager(), isd=h("A0000001510000FF")).select()


class RunCounting(ScriptedCardManager):
    """The scripted card manager, each handing of commands to the transport noted (a relay's round trip)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.handed: list[list[int]] = []  # the INS bytes of each run or single command
        self._in_run = False

    def transmit_raw(self, command: bytes) -> bytes:
        if not self._in_run:
            self.handed.append([command[1]])
        return super().transmit_raw(command)

    def transmit_raw_many(self, commands: Sequence[bytes]) -> list[bytes]:
        self.handed.append([command[1] for command in commands])
        self._in_run = True
        try:
            return super().transmit_raw_many(commands)
        finally:
            self._in_run = False


def test_select_and_the_data_read_before_authentication_go_as_one_run() -> None:
    card = RunCounting()
    gp = GlobalPlatform(card)
    cplc = gp.select_with_cplc()  # with the card data: 6A88 here, asked again ahead of the session as before
    assert cplc is not None and cplc.raw == CPLC and gp.selected == ISD and gp.known_card_data is None
    gp.select_for_session()
    assert card.handed == [[0xA4, 0xCA, 0xCA], [0xA4, 0xCA]]
    scp03 = CARD_DATA.replace(h("040255"), h("040370"))  # the scripted card's protocol: SCP03 i=70
    card.queue(0xCA, 0x00, 0x66, ResponseAPDU(scp03, 0x9000))
    gp = GlobalPlatform(card)
    gp.select_for_session()
    assert gp.card_data()["scp"] == "03 70" and card.handed[-1] == [0xA4, 0xCA]
    handed = len(card.handed)
    gp.select_for_session()  # the card data read: the SELECT goes ahead of INITIALIZE UPDATE, in one run
    assert len(card.handed) == handed and gp.selected is None
    _open(gp)
    assert card.handed[handed:] == [[0xA4, 0x50], [0x82]] and gp.selected == ISD
    # identified with its card data in one run, the card's session needs no other: SELECT + INITIALIZE UPDATE
    card.queue(0xCA, 0x00, 0x66, ResponseAPDU(scp03, 0x9000))
    gp = GlobalPlatform(card)
    handed = len(card.handed)
    assert gp.select_with_cplc() == cplc and (gp.known_card_data or {}).get("scp") == "03 70"
    gp.select_for_session()
    _open(gp)
    assert card.handed[handed:] == [[0xA4, 0xCA, 0xCA], [0xA4, 0x50], [0x82]]
    given = GlobalPlatform(card)  # another client of the flow, given what the first read (DeployOptions.identified)
    given.known_card_data = gp.known_card_data
    handed = len(card.handed)
    given.select_for_session()
    _open(given)
    assert card.handed[handed:] == [[0xA4, 0x50], [0x82]]
    assert GlobalPlatform(RunCounting(cplc=None)).select_with_cplc() is None  # no CPLC: the caller falls back
    with pytest.raises(GPError, match="no card manager answers"):  # a refused SELECT ends the run, and raises
        GlobalPlatform(RunCounting(), isd=h("A0000001510000FF")).select_with_cplc()


def test_the_card_life_cycle_goes_in_one_run_with_the_registry_read_back() -> None:
    card = RunCounting()
    card.queue(0xF2, 0x80, 0x02, ResponseAPDU(_e3((0x4F, ISD), (0x9F70, b"\x0F"), (0xC5, b"\x9E")), 0x9000))
    gp = GlobalPlatform(card)
    gp.select()
    life_cycle = gp.card_life_cycle_part(["INITIALIZED", "SECURED"])
    firsts = gp.send_parts([life_cycle], then=gp.registry_commands())
    assert card.handed[-1][:3] == [0xF0, 0xF0, 0xF2] and len(firsts) == len(card.handed[-1]) - 2
    isd = gp.registry(firsts=firsts).isd
    assert isd is not None and isd.aid == ISD and isd.state == "SECURED"
    handed = len(card.handed)
    card.queue(0xF0, 0x80, 0x0F, ResponseAPDU(b"", 0x6985))  # the card refuses the second: the run stops there
    with pytest.raises(PartRefused, match="SET STATUS \\(card to SECURED\\)") as refused:
        gp.send_parts([life_cycle], then=gp.registry_commands())
    assert refused.value.done == 0 and card.handed[handed:] == [[0xF0, 0xF0, 0xF2, 0xF2, 0xF2]]
    assert [c.ins for c in card.sent[-2:]] == [0xF0, 0xF0]  # nothing after the refusal reached the card


# ---------------------------------------------------------------- GET STATUS


def _e3(*items: tuple[int, bytes]) -> bytes:
    return encode_tlv(0xE3, b"".join(encode_tlv(t, v) for t, v in items))


def test_get_status_tlv_with_continuation() -> None:
    card = ScriptedCardManager()
    first = _e3((0x4F, h("F0636172640101")), (0x9F70, b"\x07"), (0xC5, b"\x00\x00\x00"), (0xC4, h("F06361726401")))
    second = _e3((0x4F, h("F0636172641001")), (0x9F70, b"\x83"), (0xC5, b"\x80\x00\x00"))
    card.queue(0xF2, 0x40, 0x02, ResponseAPDU(first, 0x6310))
    card.queue(0xF2, 0x40, 0x03, ResponseAPDU(second, 0x9000))
    gp = GlobalPlatform(card)
    apps = gp.get_status(STATUS_APPLICATIONS)
    assert [(a.aid.hex().upper(), a.state, a.kind) for a in apps] == [
        ("F0636172640101", "SELECTABLE", "APP"), ("F0636172641001", "LOCKED", "SSD")]
    assert apps[0].load_file == h("F06361726401")
    assert [c.p2 for c in card.sent if c.ins == 0xF2] == [0x02, 0x03]


def test_registry_continues_a_long_load_file_list_before_asking_for_the_applications() -> None:
    """The registry's run ends at the load files' 6310 (more data): their next occurrence goes before the
    applications' first GET STATUS, which would end the card's listing of load files ([GPCS] 11.4.2)."""
    card = RunCounting()
    card.queue(0xF2, 0x80, 0x02, ResponseAPDU(_e3((0x4F, ISD), (0x9F70, b"\x01"), (0xC5, b"\x9e\x00\x00")), 0x9000))
    package = (0x4F, h("F06361726401")), (0x9F70, b"\x01"), (0x84, h("F0636172640101"))
    card.queue(0xF2, 0x10, 0x02, ResponseAPDU(_e3(*package), 0x6310))
    card.queue(0xF2, 0x10, 0x03, ResponseAPDU(_e3((0x4F, h("F06361726402")), (0x9F70, b"\x01")), 0x9000))
    card.queue(0xF2, 0x40, 0x02, ResponseAPDU(b"", 0x6A88))
    registry = GlobalPlatform(card).registry()
    assert [f.aid for f in registry.load_files] == [h("F06361726401"), h("F06361726402")]
    assert registry.applications == [] and registry.isd is not None
    # asked together; the run ended at the load files' 6310, their rest and the applications one by one
    assert card.handed[-3:] == [[0xF2, 0xF2, 0xF2], [0xF2], [0xF2]]
    assert [(c.p1, c.p2) for c in card.sent if c.ins == 0xF2][-3:] == [(0x10, 0x02), (0x10, 0x03), (0x40, 0x02)]


def test_get_status_load_files_with_modules_and_version() -> None:
    card = ScriptedCardManager()
    entry = _e3((0x4F, h("F06361726401")), (0x9F70, b"\x01"), (0xCE, b"\x01\x00"), (0x84, h("F0636172640101")),
                (0x84, h("F0636172640102")))
    card.queue(0xF2, 0x10, 0x02, ResponseAPDU(entry, 0x9000))
    [load_file] = GlobalPlatform(card).get_status(STATUS_LOAD_FILES_AND_MODULES)
    assert load_file.state == "LOADED" and load_file.version_string == "1.0"
    assert load_file.modules == (h("F0636172640101"), h("F0636172640102"))


def test_get_status_falls_back_to_the_old_format() -> None:
    card = ScriptedCardManager()
    card.queue(0xF2, 0x80, 0x02, ResponseAPDU(b"", 0x6A86))
    card.queue(0xF2, 0x80, 0x00, ResponseAPDU(b"\x08" + ISD + b"\x01\x9e", 0x9000))
    card.queue(0xF2, 0x10, 0x02, ResponseAPDU(b"", 0x6A86))
    card.queue(0xF2, 0x10, 0x00, ResponseAPDU(h("07A0000001515350") + b"\x01\x00\x01" + h("08A000000151535041"),
                                              0x9000))
    gp = GlobalPlatform(card)
    [isd] = gp.get_status(STATUS_ISD)
    assert (isd.kind, isd.state) == ("ISD", "OP_READY")
    assert {"SecurityDomain", "CardLock", "CardTerminate", "CardReset"} <= set(isd.privilege_names)
    [elf] = gp.get_status(STATUS_LOAD_FILES_AND_MODULES)
    assert elf.aid == h("A0000001515350") and elf.modules == (h("A000000151535041"),)


def test_empty_registry_kind_is_an_empty_list() -> None:
    card = ScriptedCardManager()
    card.queue(0xF2, 0x40, 0x02, ResponseAPDU(b"", 0x6A88))
    assert GlobalPlatform(card).get_status(STATUS_APPLICATIONS) == []


# ---------------------------------------------------------------- GET DATA


def test_cplc_decoding() -> None:
    cplc = Cplc.parse(h("9F7F2A") + CPLC)
    fields = cplc.fields()
    assert fields["ic_fabricator"] == b"\x00\x01" and fields["ic_serial_number"] == bytes(range(12, 16))
    assert cplc.identity == "cplc:" + (b"\x00\x01\x02\x03" + bytes(range(12, 18))).hex().upper()
    assert dict(cplc.describe())["os_release_date"] == "0607 (Y0 day 607)"


def test_key_info_and_card_data() -> None:
    keys = parse_key_info(h("E012C00401308810C00402308810C00403308810"))
    assert [(k.key_id, k.version, k.type_name, k.length) for k in keys] == [
        (1, 0x30, "AES", 16), (2, 0x30, "AES", 16), (3, 0x30, "AES", 16)]
    assert parse_card_data(CARD_DATA)["scp"] == "02 55"


def test_privileges_both_ways() -> None:
    assert encode_privileges(["CardReset"]) == b"\x04"
    assert encode_privileges(["SecurityDomain", "GlobalDelete"]) == b"\x80\x10\x00"
    assert privilege_names(b"\xc0\x00\x00") == ["DAPVerification"]
    with pytest.raises(Exception, match="unknown privilege 'Root'; valid: MandatedDAPVerification"):
        encode_privileges(["Root"])


# ---------------------------------------------------------------- commands


def test_install_load_delete_set_status_encodings() -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card)
    gp.select()
    gp.install_for_load(h("F06361726401"))
    progress: list[tuple[int, int]] = []
    assert gp.load(bytes(600), progress=lambda done, total: progress.append((done, total))) == 3
    gp.install_for_install(h("F06361726401"), h("F0636172640101"), h("F0636172640199"),
                           privileges=b"\x04", params=h("0102"))
    gp.delete(h("F06361726401"), related=True)
    gp.set_application_lock(h("F0636172640199"), True)
    gp.set_card_life_cycle("card_locked")
    sent = [c for c in card.sent if c.ins != 0xA4]
    assert sent[0].to_bytes() == h("80E6020013") + h("06F06361726401") + h("08") + ISD + h("000000") + b"\x00"
    loads = [c for c in sent if c.ins == 0xE8]
    assert [(c.p1, c.p2, len(c.data)) for c in loads] == [(0x00, 0, 255), (0x00, 1, 255), (0x80, 2, 90)]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    install = next(c for c in sent if c.ins == 0xE6 and c.p1 == 0x0C)
    assert install.data == (h("06F06361726401") + h("07F0636172640101") + h("07F0636172640199") + h("0104")
                            + h("04C9020102") + b"\x00")
    assert next(c for c in sent if c.ins == 0xE4).to_bytes() == h("80E40080084F06F06361726401") + b"\x00"
    assert next(c for c in sent if c.ins == 0xF0 and c.p1 == 0x40).p2 == 0x80
    assert next(c for c in sent if c.ins == 0xF0 and c.p1 == 0x80).p2 == 0x7F


def test_load_blocks_shrink_for_the_mac(guard: BrickGuard) -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card, guard=guard)
    _open(gp)
    gp.channel.unwrap = lambda response: response  # the scripted card sends no R-MAC
    gp.load(bytes(500))
    loads = [c for c in card.sent if c.ins == 0xE8]
    assert [len(c.data) for c in loads] == [247 + 8, 247 + 8, 6 + 8]
    assert all(c.cla == 0x84 for c in loads)


@pytest.mark.parametrize(("sw", "words"), [
    (0x6438, "imported package is missing"),
    (0x6985, "refused in this state"),
    (0x6A80, "incorrect values in the command data"),
    (0x6A84, "not enough memory"),
])
def test_status_words_are_explained(sw: int, words: str) -> None:
    card = ScriptedCardManager()
    card.queue(0xE6, 0x0C, 0x00, ResponseAPDU(b"", sw))
    with pytest.raises(GPError, match=f"INSTALL \\[for install\\] failed: card answered {sw:04X}.*{words}") as caught:
        GlobalPlatform(card).install_for_install(h("F06361726401"), h("F0636172640101"))
    assert caught.value.sw == sw


def test_put_key_is_masked_in_traces() -> None:
    card = ScriptedCardManager()
    card.trace = Trace()
    card.transmit(CommandAPDU(0x84, 0xD8, 0x00, 0x81, bytes(range(30))))
    assert "masked: PUT KEY" in card.trace.format() and "01 02 03" not in card.trace.format()
