"""The GlobalPlatformPro wrapper (cardsuite.gp.gppro).

Always: the command line and environment it builds (keys only in GP_KEY_*, never in argv, never the
default-key fallback), `--list` parsing in GPCommands.listRegistry's format, failure mapping and the brick
guard, using a stand-in `java` that records what it was given. With CARDSUITE_GP_JAR: the real gp.jar
against a simulated card behind vpcd (skipped with the reason otherwise)."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest
from cardsuite.gp.client import GPError
from cardsuite.gp.gppro import GPPro, GPProError, c9_params, dgi_lines, gp_modes, parse_list_output
from cardsuite.gp.guard import BrickGuard, BrickGuardError
from cardsuite.gp.keys import MasterKeys
from cardsuite.gp.scp import CardCryptogramError, KeySet
from cardsuite.settings import ENV_GP_JAR
from support import ECHO_AID, ECHO_PACKAGE_AID

KEYS = KeySet(bytes.fromhex("00112233445566778899AABBCCDDEEFF"), bytes(range(16)), bytes(range(16, 32)), kvn=0x30)
h = bytes.fromhex
ECHO = Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap"

LIST_OUTPUT = """\
ISD: A000000151000000 (OP_READY)
     Parent:  A000000151000000
     From:    A0000001515350
     Privs:   [SecurityDomain, CardLock, CardTerminate, CardReset, CVMManagement]

APP: F0636172640101 (SELECTABLE)
     Parent:  A000000151000000
     From:    F06361726401
     Privs:   []

APP: F0636172641001 (LOCKED)
     Parent:  A000000151000000
     From:    F06361726410
     Privs:   [CardReset]

PKG: F06361726401 (LOADED)
     Parent:  A000000151000000
     Version: 1.0
     Applet:  F0636172640101

"""


def test_list_output_is_parsed() -> None:
    registry = parse_list_output(LIST_OUTPUT)
    assert registry.isd is not None and registry.isd.state == "OP_READY"
    assert {"SecurityDomain", "CardLock", "CardReset"} <= set(registry.isd.privilege_names)
    echo, wallet = registry.applications
    assert (echo.aid, echo.state, echo.load_file) == (h("F0636172640101"), "SELECTABLE", h("F06361726401"))
    assert wallet.state == "LOCKED" and wallet.privilege_names == ["CardReset"]
    [package] = registry.load_files
    assert package.version_string == "1.0" and package.modules == (h("F0636172640101"),)


@pytest.fixture
def fake_java(tmp_path: Path) -> Path:
    """A `java` that records argv and GP_* variables and answers per the FAKE_GP_MODE file."""
    script = tmp_path / "java"
    log = tmp_path / "calls.jsonl"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env python3
        import json, os, sys
        mode = open({str(tmp_path / "mode")!r}).read().strip()
        with open({str(log)!r}, "a") as f:
            f.write(json.dumps({{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items()
                                                                if k.startswith("GP_")}}}}) + "\\n")
        if mode == "list":
            print(open({str(tmp_path / "list.txt")!r}).read())
        elif mode == "cryptogram":
            print("Failed to open secure channel: Card cryptogram invalid!", file=sys.stderr)
            print("Error: Card cryptogram invalid!", file=sys.stderr); sys.exit(1)
        elif mode == "install6985":
            print("Error: INSTALL [for install and make selectable] failed: 0x6985 (Conditions of use not satisfied)",
                  file=sys.stderr); sys.exit(1)
        elif mode == "leak":
            print("# GP_KEY_ENC=" + os.environ["GP_KEY_ENC"]); print("Error: boom", file=sys.stderr); sys.exit(1)
        elif mode == "java":
            print('Exception in thread "main" java.lang.IllegalArgumentException: Insufficient data to parse TLV',
                  file=sys.stderr); sys.exit(1)
        elif mode == "load":  # gp.jar -d: its GP_* variables, then the APDU trace
            print("# GP_KEY_ENC=" + os.environ["GP_KEY_ENC"])
            for block, p1 in ((0, "00"), (1, "00"), (2, "80")):
                print(f"A>> T=1 (4+0255) 84E8{{p1}}{{block:02X}} DF C4820123 ..."); print("A<< (0000+2) (12ms) 9000")
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "list.txt").write_text(LIST_OUTPUT)
    (tmp_path / "gp.jar").write_bytes(b"PK\x05\x06" + bytes(18))
    return script


def _calls(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def _gppro(tmp_path: Path, fake_java: Path, mode: str, guard: BrickGuard | None = None) -> GPPro:
    (tmp_path / "mode").write_text(mode)
    return GPPro(tmp_path / "gp.jar", reader="Virtual PCD 00 00", java=str(fake_java), guard=guard)


def test_keys_go_through_the_environment_only(tmp_path: Path, fake_java: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GP_KEY", "404142434445464748494A4B4C4D4E4F")  # a stray master key must not leak in
    registry = _gppro(tmp_path, fake_java, "list").list(KEYS)
    assert registry.load_files[0].aid == h("F06361726401")
    [call] = _calls(tmp_path)
    assert call["argv"][-3:] == ["--reader", "Virtual PCD 00 00", "--list"]
    assert not any(KEYS.enc.hex().upper() in a.upper() for a in call["argv"])
    assert call["env"] == {"GP_KEY_ENC": KEYS.enc.hex().upper(), "GP_KEY_MAC": KEYS.mac.hex().upper(),
                           "GP_KEY_DEK": KEYS.dek.hex().upper(), "GP_KEY_VER": "0x30"}


def test_install_of_a_package_not_on_the_card_loads_it(tmp_path: Path, fake_java: Path) -> None:
    """gp.jar 26.02.11 throws on parameters that are not a TLV: the wrapper sends them as C9."""
    _gppro(tmp_path, fake_java, "ok").install(ECHO, KEYS, instance=h("F0636172640199"), params=h("0102"),
                                              privileges=["CardReset"], loaded=False)
    [call] = _calls(tmp_path)
    assert call["argv"][-10:] == ["--install", str(ECHO), "--applet", ECHO_AID.hex().upper(), "--create",
                                  "F0636172640199", "--params", "C9020102", "--privs", "CardReset"]


def test_another_instance_of_a_loaded_package_is_created_from_it(tmp_path: Path, fake_java: Path) -> None:
    """--install would send INSTALL [for load] again (6985) and --install-only ignores --create: --create with
    --package and --applet is what makes a second instance; whether the package is there, --list says."""
    (tmp_path / "list.txt").write_text(LIST_OUTPUT.replace("F06361726401 (LOADED)", f"{ECHO_PACKAGE_AID.hex().upper()} "
                                                           "(LOADED)"))
    gppro = _gppro(tmp_path, fake_java, "list")
    gppro.install(ECHO, KEYS, instance=h("F0636172640199"), params=h("C9020102"))
    list_call, install_call = _calls(tmp_path)
    assert list_call["argv"][-1] == "--list"
    assert install_call["argv"][-8:] == ["--create", "F0636172640199", "--package", ECHO_PACKAGE_AID.hex().upper(),
                                         "--applet", ECHO_AID.hex().upper(), "--params", "C9020102"]


def test_c9_wrapping_and_modes() -> None:
    assert c9_params(h("0102")) == h("C9020102")
    assert c9_params(h("C9020102")) == h("C9020102")
    assert c9_params(h("C9020102EA00")) == h("C906C9020102EA00")  # C9 and more: the whole is the applet's
    assert c9_params(b"") == h("C900")
    assert gp_modes(0x01) == ["mac"] and gp_modes(0x33) == ["mac", "enc", "rmac", "renc"] and gp_modes(0) == ["clr"]


def test_a_master_key_goes_as_gp_key_with_its_kdf() -> None:
    env = GPPro.environment(MasterKeys.of(bytes(range(16)), "visa2", 0x20), base={})
    assert env == {"GP_KEY": bytes(range(16)).hex().upper(), "GP_KEY_KDF": "visa2", "GP_KEY_VER": "0x20"}


def test_load_progress_counts_the_load_commands_and_keeps_no_trace(tmp_path: Path, fake_java: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = _gppro(tmp_path, fake_java, "load").load(ECHO, KEYS, progress=lambda d, t: seen.append((d, t)))
    [call] = _calls(tmp_path)
    assert call["argv"][:1] == ["-d"] or "-d" in call["argv"]
    assert [d for d, _ in seen] == [1, 2, seen[-1][1]] and seen[-1][0] == seen[-1][1]
    assert KEYS.enc.hex().upper() not in result.stdout + result.stderr and ">>" not in result.stdout


def test_status_word_failures_become_gp_errors(tmp_path: Path, fake_java: Path) -> None:
    with pytest.raises(GPError, match="6985") as caught:
        _gppro(tmp_path, fake_java, "install6985").install(ECHO, KEYS, loaded=False)
    assert caught.value.sw == 0x6985


def test_java_exceptions_become_one_line(tmp_path: Path, fake_java: Path) -> None:
    with pytest.raises(GPProError) as caught:
        _gppro(tmp_path, fake_java, "java").delete(h("F06361726401"), KEYS)
    assert str(caught.value) == "gp.jar --delete F06361726401: gp.jar failed (exit 1): Insufficient data to parse TLV"


def test_dgi_data_becomes_gp_jars_dgi_file() -> None:
    data = h("0101") + h("03") + h("AABBCC") + h("8F01") + h("FF0100") + bytes(256)
    assert dgi_lines(data) == f"DGI0101=AABBCC\nDGI8F01={'00' * 256}\n"


def test_wrong_keys_engage_the_brick_guard(tmp_path: Path, fake_java: Path) -> None:
    guard = BrickGuard(tmp_path / "guard.db")
    gppro = _gppro(tmp_path, fake_java, "cryptogram", guard)
    with pytest.raises(CardCryptogramError, match="wrong keys"):
        gppro.list(KEYS)
    with pytest.raises(BrickGuardError):
        gppro.list(KEYS)
    assert len(_calls(tmp_path)) == 1  # the second attempt never ran gp.jar
    (tmp_path / "mode").write_text("list")
    gppro.list(KEYS, force=True)
    assert guard.failures() == []


def test_keys_are_masked_in_what_is_kept(tmp_path: Path, fake_java: Path) -> None:
    with pytest.raises(GPProError) as caught:
        _gppro(tmp_path, fake_java, "leak").list(KEYS)
    assert KEYS.enc.hex().upper() not in str(caught.value)
    with pytest.raises(Exception, match="print its key variables"):
        _gppro(tmp_path, fake_java, "ok").run(["--list", "-v"], KEYS)


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=f"set {ENV_GP_JAR}"):
        GPPro.from_environment(env={})
    with pytest.raises(Exception, match="gp.jar not found"):
        GPPro(tmp_path / "missing.jar")


# ---------------------------------------------------------------- the real gp.jar


@pytest.fixture
def gp_jar() -> Path:
    jar = os.environ.get(ENV_GP_JAR)
    if not jar:
        pytest.skip(f"no GlobalPlatformPro: set {ENV_GP_JAR} to a gp.jar (it is not on Maven Central here) "
                    "to run the wrapper against a simulated card")
    return Path(jar)


@pytest.mark.e2e
def test_real_gp_jar_lists_the_simulated_card(gp_jar: Path) -> None:
    from cardsuite.sim.bridge import CardManagerConfig
    from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots

    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    # the bridge's ISD with the development keys, no applets: an empty card for GlobalPlatformPro
    simulator = VpcdSimulator(slot=slots[0], applets=[], card_manager=CardManagerConfig("scp03")).start()
    try:
        registry = GPPro(gp_jar, reader=simulator.reader).list(KeySet.single(bytes(range(0x40, 0x50))))
        assert registry.isd is not None and registry.isd.state == "OP_READY"
    finally:
        simulator.stop()
