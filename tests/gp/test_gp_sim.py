"""The cardsuite GlobalPlatform client end to end against the simulated card manager (the bridge's ISD),
in-process through JPype, with SCP02 and SCP03: list, load the echo CAP fixture, install, select and use
the applet, delete, re-install, lock, card life cycle; wrong keys give a clear error, engage the brick
guard and move the card's counter of failed authentications.

The card manager is enabled here through SimulatedCard.enableCardManager until the simulator options
carry it; the tests skip (with the reason) while the built bridge has no card manager.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.gp.client import AlreadyLoadedError, GlobalPlatform, GPError, PartRefused
from cardsuite.gp.guard import BrickGuard, BrickGuardError
from cardsuite.gp.scp import CardCryptogramError, KeySet, SecurityLevel
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.tooling.cap import read_cap
from cardsuite.trace import Trace
from support import ABSENT_AID, ECHO_AID, ECHO_PACKAGE_AID

pytestmark = pytest.mark.sim_only  # needs JPype access to the simulated card to enable its card manager

ECHO = read_cap(Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap")
DEV = KeySet.single(bytes(range(0x40, 0x50)))
ECHO_INS = 0x01  # the echo applet's loopback instruction
APP, PKG = ECHO_AID.hex().upper(), ECHO_PACKAGE_AID.hex().upper()  # as the CLI prints them
h = bytes.fromhex


@dataclass
class GpCard:
    transport: SimulatorTransport
    manager: object  # cardsuite.simbridge.gp.CardManager through JPype
    guard: BrickGuard

    def client(self) -> GlobalPlatform:
        return GlobalPlatform(self.transport, guard=self.guard)

    def authenticated(self, level: SecurityLevel = SecurityLevel.C_MAC, keys: KeySet = DEV) -> GlobalPlatform:
        gp = self.client()
        gp.open_secure_channel(keys, level)
        return gp

    def echo(self, aid: bytes = ECHO.applet_aids[0]) -> bytes:
        self.transport.select(aid)
        return self.transport.send(CommandAPDU(0x80, ECHO_INS, 0, 0, b"\x01\x02\x03", le=256)).data


def _open_card(project: Project, tmp_path: Path, protocol: str, keys: KeySet | None = None) -> GpCard:
    config = CardManagerConfig(protocol)
    if keys is not None:
        config = CardManagerConfig(protocol, keys.kvn, (keys.enc, keys.mac, keys.dek))
    # an empty card: everything goes through the ISD
    transport = SimulatorTransport(project, applets=[], card_manager=config)
    transport.connect()
    transport.trace = Trace(limit=500)
    return GpCard(transport, transport.manager, BrickGuard(tmp_path / "guard.db"))


@pytest.fixture(params=["scp02", "scp03"])
def gp_card(request: pytest.FixtureRequest, project: Project, tmp_path: Path) -> Iterator[GpCard]:
    card = _open_card(project, tmp_path, request.param)
    yield card
    card.transport.disconnect()


@pytest.mark.parametrize("level", [SecurityLevel.C_MAC, SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION],
                         ids=["mac", "enc"])
def test_load_install_use_delete_reinstall(gp_card: GpCard, level: SecurityLevel) -> None:
    gp = gp_card.authenticated(level)
    empty = gp.registry()
    assert empty.isd is not None and empty.isd.state == "OP_READY"
    assert empty.load_file(ECHO.package_aid) is None

    progress: list[tuple[int, int]] = []
    blocks = gp.load_cap(ECHO, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (blocks, blocks) and blocks == -(-len(ECHO.load_file()) // gp.channel.max_data())
    gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0])
    registry = gp.registry()
    app = registry.application(ECHO.applet_aids[0])
    assert app is not None and app.state == "SELECTABLE" and app.load_file == ECHO.package_aid
    load_file = registry.load_file(ECHO.package_aid)
    assert load_file is not None and load_file.modules == tuple(ECHO.applet_aids)
    assert gp_card.echo() == b"\x01\x02\x03"  # the loaded applet runs

    gp = gp_card.authenticated(level)  # selecting the applet closed the channel
    gp.delete(ECHO.package_aid, related=True)
    assert gp.registry().load_file(ECHO.package_aid) is None
    assert gp_card.transport.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, ECHO.applet_aids[0])).sw == 0x6A82

    gp = gp_card.authenticated(level)
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0])
    assert gp_card.echo() == b"\x01\x02\x03"


def test_install_an_instance_under_its_own_aid(gp_card: GpCard) -> None:
    gp = gp_card.authenticated()
    gp.load_cap(ECHO)
    instance = ABSENT_AID
    gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0], instance, privileges=b"\x00", params=b"")
    assert gp.registry().application(instance) is not None
    assert gp_card.echo(instance) == b"\x01\x02\x03"
    gp = gp_card.authenticated()
    with pytest.raises(GPError) as taken:  # the same instance AID twice
        gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0], instance)
    assert taken.value.sw in (0x6985, 0x6A80, 0x6A89)


@pytest.mark.parametrize("level", [SecurityLevel.C_MAC, SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION],
                         ids=["mac", "enc"])
def test_loading_a_package_already_on_the_card_says_so(gp_card: GpCard, level: SecurityLevel) -> None:
    gp = gp_card.authenticated(level)
    gp.load_cap(ECHO)
    with pytest.raises(AlreadyLoadedError) as again:
        gp.load_cap(ECHO)
    assert again.value.sw == 0x6985 and again.value.load_file.aid == ECHO.package_aid  # the card's own answer
    assert "already loaded" in str(again.value) and f"{PKG} v1.0" in str(again.value)
    assert "AID is taken" not in str(again.value)
    # the channel still works, and the loaded package is untouched
    assert gp.registry().load_file(ECHO.package_aid) is not None
    gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0])
    assert gp_card.echo() == b"\x01\x02\x03"


def _runs(card: GpCard) -> list[list[bytes]]:
    """What the card's transport sends, as runs (transmit_raw_many: the commands up to the first answer that
    is not 9000) and single commands (a run of one), each command as its INS and P1."""
    runs: list[list[bytes]] = []
    many, one = card.transport.transmit_raw_many, card.transport.transmit_raw
    in_run = []

    def run(commands: list[bytes]) -> list[bytes]:
        in_run.append(True)  # the simulator sends a run's commands one by one: not counted again
        try:
            answers = many(commands)
        finally:
            in_run.pop()
        runs.append([command[1:3] for command in commands[: len(answers)]])
        return answers

    def single(command: bytes) -> bytes:
        if not in_run:
            runs.append([command[1:3]])
        return one(command)

    card.transport.transmit_raw_many = run  # type: ignore[method-assign]
    card.transport.transmit_raw = single  # type: ignore[method-assign]
    return runs


def test_the_registry_is_read_in_one_run_up_to_an_answer_not_9000(gp_card: GpCard) -> None:
    gp = gp_card.authenticated()
    runs = _runs(gp_card)
    empty = gp.registry()  # no application: GET STATUS 40 answers 6A88, last of the run (a new card: one run)
    assert empty.isd is not None and empty.applications == [] and empty.load_file(ECHO.package_aid) is None
    assert runs == [[b"\xf2\x80", b"\xf2\x10", b"\xf2\x40"]]
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0])
    runs.clear()
    full = gp.registry()  # the channel went on as if one by one: every command's MAC verified by the card
    assert runs == [[b"\xf2\x80", b"\xf2\x10", b"\xf2\x40"]]
    assert full.application(ECHO.applet_aids[0]) is not None and full.load_file(ECHO.package_aid) is not None
    assert gp.registry() == full


@pytest.mark.parametrize("level", [SecurityLevel.C_MAC, SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION],
                         ids=["mac", "enc"])
def test_the_registry_goes_with_external_authenticate(gp_card: GpCard, level: SecurityLevel) -> None:
    """registry(authenticate=…): the registry's run follows EXTERNAL AUTHENTICATE in one run, wrapped as the
    session's first commands (the card verifies their MACs, and the session goes on). With a session already
    open the call opens none and the registry goes as ever."""
    _registry_with_external_authenticate(gp_card, level, together=True)


def test_with_r_mac_external_authenticate_goes_alone(project: Project, tmp_path: Path) -> None:
    """R-MAC: each answer is checked before the next command goes (SCP03; SCP02 R-MAC is refused unsent)."""
    card = _open_card(project, tmp_path, "scp03")
    try:
        _registry_with_external_authenticate(card, SecurityLevel.C_MAC | SecurityLevel.R_MAC, together=False)
    finally:
        card.transport.disconnect()


def _registry_with_external_authenticate(card: GpCard, level: SecurityLevel, together: bool) -> None:
    gp = card.client()
    runs = _runs(card)

    def authenticate() -> None:  # as a deploy's: a session only when none is open
        if gp.channel is None:
            gp.open_secure_channel(DEV, level)

    registry = gp.registry(authenticate=authenticate)
    assert registry.isd is not None and gp.channel is not None
    auth, status = [bytes([0x82, int(level)])], [b"\xf2\x80", b"\xf2\x10", b"\xf2\x40"]
    if together:
        assert runs[-1] == auth + status
    else:
        assert runs[-4:] == [auth, *([command] for command in status)]
    runs.clear()
    assert gp.registry(authenticate=authenticate) == registry
    assert b"\x82" not in {command[:1] for run in runs for command in run}  # nothing opened again
    gp.load_cap(ECHO)  # the session's chaining went on from the commands sent with EXTERNAL AUTHENTICATE
    assert gp.registry().load_file(ECHO.package_aid) is not None


def test_parts_go_in_one_run_and_a_refusal_says_how_many_were_done(gp_card: GpCard) -> None:
    """send_parts: a load and an install in one run (one round trip on a relay), the card's MACs verified
    throughout; a refused INSTALL [for load] of a load file the card holds is AlreadyLoadedError, with the
    parts before it done and nothing after it sent."""
    gp = gp_card.authenticated()
    runs = _runs(gp_card)
    load = gp.load_cap_part(ECHO)
    install = gp.install_for_install_part(ECHO.package_aid, ECHO.applet_aids[0])
    firsts = gp.send_parts([load, install], then=gp.registry_commands())  # the registry read back too
    assert len(runs) == 1 and len(runs[0]) == len(load.commands) + 1 + len(firsts) and firsts
    assert gp.registry(firsts=firsts).application(ECHO.applet_aids[0]) is not None
    assert gp_card.echo() == b"\x01\x02\x03"
    gp = gp_card.authenticated()
    other = gp.install_for_install_part(ECHO.package_aid, ECHO.applet_aids[0], ABSENT_AID)
    runs.clear()
    with pytest.raises(PartRefused) as refused:
        gp.send_parts([other, gp.load_cap_part(ECHO), gp.install_for_install_part(ECHO.package_aid, ECHO_AID)])
    assert refused.value.done == 1 and isinstance(refused.value.error, AlreadyLoadedError)
    assert [command[:1] for command in runs[0]] == [b"\xe6", b"\xe6"]  # the run stopped at the refusal
    registry = gp.registry()
    assert registry.application(ABSENT_AID) is not None and registry.load_file(ECHO.package_aid) is not None


def test_install_for_load_goes_with_the_first_load_blocks(gp_card: GpCard) -> None:
    """One run for INSTALL [for load] and the first window of blocks (a relay: one round trip less)."""
    gp = gp_card.authenticated()
    runs = _runs(gp_card)
    blocks = gp.load_cap(ECHO)
    assert runs[0][0] == b"\xe6\x02" and {command[0] for command in runs[0][1:]} == {0xE8}
    assert sum(len(run) for run in runs) == blocks + 1
    assert gp.registry().load_file(ECHO.package_aid) is not None


def test_a_refused_load_of_a_new_package_keeps_the_cards_answer(gp_card: GpCard) -> None:
    gp = gp_card.authenticated()
    with pytest.raises(GPError) as refused:  # no such security domain to own it
        gp.install_for_load(ECHO.package_aid, domain=h("A000000151DEAD"))
    assert not isinstance(refused.value, AlreadyLoadedError)
    assert "already loaded" not in str(refused.value)


@pytest.mark.parametrize("level", [SecurityLevel.C_MAC, SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION],
                         ids=["mac", "enc"])
def test_load_blocks_sent_together_stop_at_the_first_refused_one_and_keep_the_channel(gp_card: GpCard,
                                                                                      level: SecurityLevel) -> None:
    """send_many wraps every block before any goes (a relay sends them without a round trip each): the card
    refuses the third (out of sequence, 6A86), the fourth is never sent, and the channel goes on as if the
    blocks had gone one by one (the next command's MAC is the one the card expects)."""
    gp = gp_card.authenticated(level)
    gp.install_for_load(ECHO.package_aid)
    data = ECHO.load_file()
    blocks = [CommandAPDU(0x80, 0xE8, 0x00, number, data[i * 64 : (i + 1) * 64]) for i, number in
              enumerate((0, 1, 3, 4))]
    trace = gp_card.transport.trace
    assert trace is not None
    trace.clear()
    with pytest.raises(GPError, match="LOAD block 3/4") as refused:
        gp.send_many(blocks, [f"LOAD block {i + 1}/4" for i in range(4)])
    assert refused.value.sw == 0x6A86
    assert [e.sw for e in trace.entries] == [0x9000, 0x9000, 0x6A86]  # the fourth never reached the card
    assert gp.registry().load_file(ECHO.package_aid) is None  # same channel: its MAC chaining is the card's
    gp.load_cap(ECHO)  # and it loads whole afterwards
    assert gp.registry().load_file(ECHO.package_aid) is not None


def test_lock_and_unlock_an_application(gp_card: GpCard) -> None:
    gp = gp_card.authenticated()
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, ECHO.applet_aids[0])
    gp.set_application_lock(ECHO.applet_aids[0], True)
    assert gp.registry().application(ECHO.applet_aids[0]).state == "LOCKED"
    assert gp_card.transport.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, ECHO.applet_aids[0])).sw == 0x6A82
    gp = gp_card.authenticated()
    gp.set_application_lock(ECHO.applet_aids[0], False)
    assert gp.registry().application(ECHO.applet_aids[0]).state == "SELECTABLE"
    assert gp_card.echo() == b"\x01\x02\x03"


def test_card_life_cycle(gp_card: GpCard) -> None:
    gp = gp_card.authenticated()
    for state in ("INITIALIZED", "SECURED"):
        gp.set_card_life_cycle(state)
        assert gp.registry().isd.state == state


def test_cplc_and_key_information(gp_card: GpCard) -> None:
    gp = gp_card.client()
    assert gp.card_identity().startswith("cplc:")
    assert len(gp.cplc().raw) == 42
    scp = gp.card_data()["scp"]
    assert scp in ("02 55", "03 70")
    keys = gp.key_info()
    assert keys and all(k.version == keys[0].version for k in keys)


def test_wrong_keys_clear_error_guard_and_card_counter(project: Project, tmp_path: Path) -> None:
    card = _open_card(project, tmp_path, "scp03")
    wrong = KeySet.single(bytes(16), 0)
    with pytest.raises(CardCryptogramError, match="wrong keys for this card"):
        card.authenticated(keys=wrong)
    assert int(card.manager.failedAuthentications()) == 1  # the card counted the attempt
    sent = len(card.transport.trace.entries)
    with pytest.raises(BrickGuardError, match="already failed on this card"):
        card.authenticated(keys=wrong)
    assert int(card.manager.failedAuthentications()) == 1  # refused before INITIALIZE UPDATE
    assert not any(e.command.startswith("80 50") for e in list(card.transport.trace.entries)[sent:])
    with pytest.raises(CardCryptogramError):
        card.client().open_secure_channel(wrong, force=True)  # told explicitly: one more try
    assert int(card.manager.failedAuthentications()) == 2
    card.authenticated()  # the right keys still work, and reset the card's counter
    assert int(card.manager.failedAuthentications()) == 0


def test_a_key_version_probe_counts_as_a_failed_authentication(project: Project, tmp_path: Path) -> None:
    """What docs/gp.md and `gp --help` warn about: INITIALIZE UPDATE for a key version the card does not have
    moves the card's counter like wrong keys do, so the brick guard records it too."""
    card = _open_card(project, tmp_path, "scp03")
    probe = KeySet.single(bytes(range(0x40, 0x50)), kvn=0x7E)
    with pytest.raises(GPError) as missing:
        card.client().open_secure_channel(probe)
    assert missing.value.sw == 0x6A88
    assert int(card.manager.failedAuthentications()) == 1  # no key was wrong, a try is spent all the same
    with pytest.raises(BrickGuardError):
        card.client().open_secure_channel(probe)
    assert int(card.manager.failedAuthentications()) == 1  # the guard sent nothing
    card.authenticated()  # the right key version: EXTERNAL AUTHENTICATE succeeds and gives the tries back
    assert int(card.manager.failedAuthentications()) == 0


def test_the_gp_help_warns_that_initialize_update_counts(project: Project, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from cardsuite.cli.main import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["gp", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Every INITIALIZE UPDATE counts towards the card manager's lock until EXTERNAL AUTHENTICATE" in text
    assert "key version the card does not have (6A88)" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["gp", "list", "--help"])
    assert "still counts as a failed authentication" in " ".join(capsys.readouterr().out.split())
    doc = (project.root / "docs" / "gp.md").read_text()
    assert "Every INITIALIZE UPDATE counts until EXTERNAL AUTHENTICATE succeeds" in doc
    # and where to look instead of probing: the key versions, without authenticating
    card = _open_card(project, tmp_path, "scp02")
    status, out, _ = _cli(card, ["gp", "cplc"], capsys)
    assert status == 0 and "key versions" in out and "0x" in out.split("key versions", 1)[1].splitlines()[0]
    assert int(card.manager.failedAuthentications()) == 0


def test_missing_import_is_6438(gp_card: GpCard, project: Project) -> None:
    cap_path = project.root / "tests" / "fixtures" / "caps" / "paper_transparent.cap"
    gp = gp_card.authenticated()
    with pytest.raises(GPError, match="6438 \\(an imported package is missing") as caught:
        gp.load_cap(read_cap(cap_path))  # imports the isofs library, which is not on the card
    assert caught.value.sw == 0x6438


# ---------------------------------------------------------------- the CLI on the simulated card manager


class _Kept(SimulatorTransport):
    """The test's card behind the CLI's `with connect(args)`: leaving the block must not drop the card."""

    def __init__(self, inner: SimulatorTransport) -> None:
        super().__init__(inner.project, applets=[])
        self._card, self._jbytes, self._tear_exception = inner._card, inner._jbytes, inner._tear_exception
        self.trace = inner.trace

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...


def _cli(card: GpCard, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    import argparse

    from cardsuite.cli import gp as gp_cli
    from cardsuite.errors import CardsuiteError

    parser = argparse.ArgumentParser(prog="cardsuite")
    commands = parser.add_subparsers(dest="command", required=True)
    gp_cli.register(commands, lambda p: p.add_argument("--card", default="sim"), lambda args: _Kept(card.transport))
    args = parser.parse_args(argv)
    try:
        status = args.handler(args)
    except CardsuiteError as exc:
        print(f"Error: {exc}", file=sys.stderr)  # what cardsuite.cli.main does
        status = 1
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_load_list_delete(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    card = _open_card(project, tmp_path, "scp03")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    fixture = str(Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap")
    status, out, err = _cli(card, ["gp", "load", fixture, "--install", "--dev-keys", "--level", "enc"], capsys)
    assert status == 0, err
    assert "LOAD 3/3 blocks" in err and f"installed {APP}" in out
    status, out, _ = _cli(card, ["gp", "list", "--dev-keys"], capsys)
    assert f"APP: {APP} (SELECTABLE)" in out and f"PKG: {PKG} (LOADED) v1.0" in out
    assert f"     Applet:  {APP}" in out
    status, _, err = _cli(card, ["gp", "load", fixture, "--dev-keys"], capsys)
    assert status == 1 and err.startswith(f"Error: package {PKG} v1.0 is already loaded on the card")
    status, out, _ = _cli(card, ["gp", "delete", PKG, "--related", "--dev-keys"], capsys)
    assert status == 0 and f"deleted {PKG} and related objects" in out
    status, out, _ = _cli(card, ["gp", "cplc"], capsys)
    assert status == 0 and "identity" in out and "cplc:" in out


def test_cli_wrong_keys_then_guard(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    card = _open_card(project, tmp_path, "scp02")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    monkeypatch.setenv("CARDSUITE_GP_KEY", "00112233445566778899AABBCCDDEEFF")
    status, _, err = _cli(card, ["gp", "list"], capsys)
    assert status == 1 and err == "Error: the card cryptogram does not verify: wrong keys for this card (SCP02)\n"
    status, _, err = _cli(card, ["gp", "list"], capsys)
    assert status == 1 and "already failed on this card" in err and "--retry-auth" in err
    assert int(card.manager.failedAuthentications()) == 1
    status, _, _ = _cli(card, ["gp", "list", "--retry-auth"], capsys)
    assert status == 1 and int(card.manager.failedAuthentications()) == 2


def test_the_card_managers_secure_channels_match_the_published_vectors(project: Project) -> None:
    """The Java side's SCP02/SCP03 and AES-CMAC against RFC 4493 and pySim's published sessions
    (host/simbridge/src/cardsuite/simbridge/gp/SecureChannelSelfTest.java): no mismatch."""
    import jpype
    from cardsuite.sim.bridge import start_jvm

    start_jvm(project)
    assert int(jpype.JClass("cardsuite.simbridge.gp.SecureChannelSelfTest").runAll()) == 0
