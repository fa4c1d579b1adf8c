"""The real GlobalPlatformPro (gp.jar, CARDSUITE_GP_JAR) against the simulated card manager over vpcd, with SCP02
and SCP03 card configurations: information, listing, loading (also encrypted and in 64-byte blocks), installing
with C9 parameters, locking applets, deleting, uninstalling, the card life cycle, explicit keys, security levels,
wrong keys and the card's counter, PUT KEY, STORE DATA, S16. gp.jar runs as a field loader runs it: its own
process, keys in its GP_KEY_* variables. Skipped with the reason when no gp.jar is given."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cardsuite.project import Project
from cardsuite.settings import ENV_GP_JAR
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots

pytestmark = pytest.mark.e2e

ECHO_CAP = Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap"
PKG, APPLET, INSTANCE = "F06361726401", "F0636172640101", "F0636172640199"
DEV = "404142434445464748494A4B4C4D4E4F"
ISSUER_AES = "00112233445566778899AABBCCDDEEFF"  # the issuer keys a PUT KEY rotates to
h = bytes.fromhex


@pytest.fixture(scope="module")
def gp_jar() -> Path:
    jar = os.environ.get(ENV_GP_JAR)
    if not jar:
        pytest.skip(f"no GlobalPlatformPro: set {ENV_GP_JAR} to a gp.jar to run it against the simulated card")
    if not Path(jar).is_file():
        pytest.skip(f"{ENV_GP_JAR}={jar} is not a file")
    return Path(jar)


@dataclass
class GpCard:
    """One simulated card behind vpcd and the gp.jar that talks to it."""

    jar: Path
    simulator: VpcdSimulator

    def gp(self, *args: str, key: str | None = DEV, kvn: int | None = None, ok: bool = True,
           enc: str | None = None, kdf: str | None = None) -> subprocess.CompletedProcess:
        """gp.jar -r <the card's reader> ARGS, the keys in its environment (one key for ENC/MAC/DEK; with ``kdf``
        the master key the card's keys are diversified from)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GP_")}
        if kdf is not None and key is not None:
            env.update(GP_KEY=key, GP_KEY_KDF=kdf)
        elif key is not None:
            env.update(GP_KEY_ENC=enc or key, GP_KEY_MAC=key, GP_KEY_DEK=key)
        if kvn is not None:
            env["GP_KEY_VER"] = f"0x{kvn:02X}"
        done = subprocess.run(["java", "-jar", str(self.jar), "-r", self.simulator.reader, *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        if ok and done.returncode != 0:
            raise AssertionError(f"gp {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def listing(self, *operations: str, **kwargs: object) -> str:
        """gp OPERATIONS -l: gp.jar lists the card after its other operations, in the same session."""
        return self.gp(*operations, "-l", **kwargs).stdout  # type: ignore[arg-type]

    def apdus(self, *hex_apdus: str, connect: str | None = None) -> list[str]:
        """APDUs sent in clear (gp -d -a, before anything else): their responses from gp's trace, data and status
        word in hex. ``connect``: the ISD's AID, for a card whose default application hides it from gp."""
        args = [arg for apdu in hex_apdus for arg in ("-a", apdu)] + (["-c", connect] if connect else [])
        lines = self.gp("-d", *args, key=None).stdout.splitlines()
        answers = ["".join(line.split()[3:]).upper() for line in lines if line.startswith("A<<")]  # A<< (n) (t) ..
        return answers[:len(hex_apdus)]

    def apdu(self, hex_apdu: str) -> str:
        return self.apdus(hex_apdu)[0]


def _start(project: Project, config: CardManagerConfig) -> VpcdSimulator:
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    return VpcdSimulator(project, slot=slots[0], applets=[], card_manager=config).start()


@pytest.fixture
def card_for(gp_jar: Path, project: Project) -> Iterator:
    started: list[VpcdSimulator] = []

    def start(config: CardManagerConfig) -> GpCard:
        started.append(_start(project, config))
        return GpCard(gp_jar, started[-1])

    yield start
    for simulator in started:
        simulator.stop()


# The card configurations the client operations run against: every operation with the SCP02 and SCP03 options
# cards announce most (55, 70); loading, the security levels the option allows and deleting with the others
# (SCP02 without the pseudo-random challenge, SCP03 with random and pseudo-random challenges, without R-MAC).
FULL = {"scp02-i55": CardManagerConfig("scp02", scp_i=0x55), "scp03-i70": CardManagerConfig("scp03", scp_i=0x70)}
SHORT = {"scp02-i15": CardManagerConfig("scp02", scp_i=0x15), "scp03-i00": CardManagerConfig("scp03", scp_i=0x00),
         "scp03-i10": CardManagerConfig("scp03", scp_i=0x10)}
MODES = {"scp02-i15": ["clr", "mac", "enc"], "scp02-i55": ["clr", "mac", "enc"], "scp03-i00": ["clr", "mac", "enc"],
         "scp03-i10": ["mac", "enc"], "scp03-i70": ["mac", "enc", "rmac", "renc"]}


def _load_enc(card: GpCard, name: str) -> str:
    # gp.jar 26.02.11 sizes blocks for 3DES padding: with SCP03, --mode enc --bs 64 makes 72-byte LOAD commands
    # that it then cuts in two with P1 b8 set on the first (its "last block" flag); so 64-byte blocks in MAC mode
    small_blocks = ["--bs", "64"] if name.startswith("scp02") else []
    return card.listing("--load", str(ECHO_CAP), "--mode", "enc", *small_blocks)


@pytest.mark.parametrize("name", list(FULL))
def test_field_loading_operations(card_for, name: str) -> None:
    card = card_for(FULL[name])
    out = card.listing("-i")
    assert "IC Serial Number" in out or "ICSerialNumber" in out.replace(" ", "")
    assert "ISD: A000000151000000 (OP_READY)" in out

    assert f"PKG: {PKG} (LOADED)" in _load_enc(card, name)
    listing = card.listing("--create", INSTANCE, "--applet", APPLET, "--package", PKG, "--params", "C903010203")
    assert f"APP: {INSTANCE} (SELECTABLE)" in listing
    assert f"APP: {INSTANCE} (LOCKED)" in card.listing("--lock-applet", INSTANCE)
    assert f"APP: {INSTANCE} (SELECTABLE)" in card.listing("--unlock-applet", INSTANCE)

    refused = card.gp("--delete", PKG, ok=False)  # the package still has an application
    assert refused.returncode != 0 and "6985" in refused.stdout + refused.stderr
    assert f"PKG: {PKG}" not in card.listing("--delete", PKG, "-f")

    assert f"APP: {APPLET} (SELECTABLE)" in card.listing("--install", str(ECHO_CAP), "--bs", "64")  # load + install
    assert f"PKG: {PKG}" not in card.listing("--uninstall", str(ECHO_CAP))

    for mode in MODES[name]:
        assert "ISD: A000000151000000" in card.listing("--mode", mode), mode

    assert "(INITIALIZED)" in card.listing("--initialize-card")
    assert "(SECURED)" in card.listing("--secure-card")
    assert "(CARD_LOCKED)" in card.listing("--lock-card")
    assert "(SECURED)" in card.listing("--unlock-card")


@pytest.mark.parametrize("name", list(SHORT))
def test_loading_and_levels_with_the_other_options(card_for, name: str) -> None:
    card = card_for(SHORT[name])
    assert f"PKG: {PKG} (LOADED)" in _load_enc(card, name)
    for mode in MODES[name][:-1]:
        assert f"PKG: {PKG} (LOADED)" in card.listing("--mode", mode), mode
    assert f"PKG: {PKG}" not in card.listing("--delete", PKG, "-f", "--mode", MODES[name][-1])


def test_explicit_keys_and_wrong_keys_move_the_counter_until_the_card_locks(card_for) -> None:
    keys = ("00112233445566778899AABBCCDDEEFF", "101112131415161718191A1B1C1D1E1F", "202122232425262728292A2B2C2D2E2F")
    card = card_for(CardManagerConfig("scp03", 0x30, tuple(map(h, keys)), auth_limit=3))
    card.gp("-l", "--key-enc", keys[0], "--key-mac", keys[1], "--key-dek", keys[2], "--key-ver", "48", key=None)
    for _ in range(3):
        wrong = card.gp("-l", ok=False)  # the development keys: not this card's
        assert "Card cryptogram invalid" in wrong.stdout + wrong.stderr
    locked = card.gp("-l", "--key-enc", keys[0], "--key-mac", keys[1], "--key-dek", keys[2], key=None, ok=False)
    assert "6983" in locked.stdout + locked.stderr  # the right keys are too late: the card locked itself


@pytest.mark.parametrize("protocol", ["scp02", "scp03"])
def test_lock_rotates_the_key_set_with_put_key(card_for, protocol: str) -> None:
    """gp --lock: PUT KEY of a whole key set (3DES over SCP02, AES over SCP03), replacing version 01."""
    card = card_for(CardManagerConfig(protocol))
    out = card.gp("--lock", ISSUER_AES)
    assert "locked with" in out.stdout
    assert "ISD: A000000151000000" in card.listing(key=ISSUER_AES)  # 3DES / AES per the card's protocol
    old = card.gp("-l", ok=False)
    assert "Card cryptogram invalid" in old.stdout + old.stderr


def test_put_key_adds_an_aes_key_version(card_for) -> None:
    card = card_for(CardManagerConfig("scp03"))
    card.gp("--put-key", "aes:" + ISSUER_AES, "--new-keyver", "0x70")
    key_info = card.apdu("80CA00E000")  # the key information template: C0 id 01, version 70, AES, 16 bytes
    assert "C00401708810" in key_info and key_info.endswith("9000")
    card.listing()  # the key set in use is untouched


def test_put_key_of_a_3des_key_is_a_gp_client_bug(card_for) -> None:
    """gp.jar 26.02.11 refuses to send PUT KEY with one 3DES key ("Only 3DES and AES symmetric keys are supported:
    DESede"); the card's 3DES PUT KEY is tested with gp --lock over SCP02 and in tests/gp/test_card_manager_keys.py.
    When gp.jar learns it, this test fails: then test the card's answer here."""
    card = card_for(CardManagerConfig("scp02"))
    done = card.gp("--put-key", "3des:" + ISSUER_AES, "--new-keyver", "0x71", ok=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "Only 3DES and AES symmetric keys are supported: DESede" in text, text
    assert "C004017180" not in card.apdu("80CA00E000")  # nothing reached the card


def test_store_data_sets_the_cplc_personalisation_and_isd_data(card_for, tmp_path: Path) -> None:
    card = card_for(CardManagerConfig("scp03"))
    dgis = tmp_path / "isd.dgi"
    dgis.write_text("# the CIN as a DGI\nDGI0045=0102030405060708090A\n")
    card.gp("--set-perso", "4711633500CAFE00", "--set-pre-perso", "0815600100BEEF00", "--store-data", "4204A0000001",
            "--store-dgi-file", str(dgis))
    cplc, iin, cin = card.apdus("80CA9F7F00", "80CA004200", "80CA004500")
    assert cplc.endswith("0815600100BEEF00" "4711633500CAFE00" "9000")  # the CPLC's last 16 bytes
    assert iin == "4204A00000019000"
    assert cin == "450A0102030405060708090A9000"


def test_store_data_through_install_for_personalization_reaches_the_applet(card_for) -> None:
    card = card_for(CardManagerConfig("scp03"))
    card.gp("--install", str(ECHO_CAP))
    done = card.gp("--personalize", APPLET, "--store-data", "420101", ok=False)
    # the echo applet has no STORE DATA: its 6D00 is the answer, not the ISD's 9000 for an IIN
    assert done.returncode != 0 and "6D00" in (done.stdout + done.stderr).upper()
    assert card.apdu("80CA004200") == "6A88"


@pytest.mark.parametrize("i", [0x71])
def test_scp03_s16(card_for, i: int) -> None:
    """S16 (i b1): 16-byte challenges, cryptograms and MACs. gp.jar 26.02.11 cannot LOAD in S16 mode: it sizes LOAD
    blocks for 8-byte MACs, so every full block outgrows --bs and it cuts the wrapped command in two with P1 b8
    (LOAD's last-block flag) set on the first part, which the card refuses (6982). The rest works."""
    card = card_for(CardManagerConfig("scp03", scp_i=i))
    modes = ["mac", "enc", "rmac", "renc"] if i & 0x60 == 0x60 else ["mac", "enc"]
    for mode in modes:
        assert "ISD: A000000151000000 (OP_READY)" in card.listing("--s16", "--mode", mode), mode
    card.gp("--s16", "--mode", "enc", "--set-perso", "4711633500CAFE00", "--lock", ISSUER_AES)
    assert card.apdu("80CA9F7F00").endswith("4711633500CAFE009000")
    assert "ISD: A000000151000000" in card.gp("--s16", "-l", key=ISSUER_AES).stdout


def test_scp02_i45_is_beyond_gp(card_for) -> None:
    """i=45 (pseudo-random card challenge, no ICV encryption): gp.jar 26.02.11 encrypts the ICV for every SCP02
    option (SCP02Wrapper.setVariant ignores i), so the card rightly refuses its second C-MAC (6982). cardsuite's
    client runs i=45 against the same card in tests/gp/test_card_manager_keys.py."""
    card = card_for(CardManagerConfig("scp02", scp_i=0x45))
    done = card.gp("-l", ok=False)
    assert "GET STATUS failed for 80F28002024F0000 with 0x6982" in done.stdout + done.stderr


@pytest.mark.parametrize(("protocol", "kdf"), [("scp02", "emv"), ("scp02", "visa2"), ("scp03", "kdf3")])
def test_an_issued_card_with_diversified_keys(card_for, protocol: str, kdf: str) -> None:
    """gp --key-kdf (here GP_KEY_KDF): the card's keys derived from the master key with its KDD."""
    card = card_for(CardManagerConfig(protocol, keys=(h(ISSUER_AES),) * 3, kdf=kdf))
    assert "ISD: A000000151000000" in card.listing(key=ISSUER_AES, kdf=kdf)
    plain = card.gp("-l", key=ISSUER_AES, ok=False)  # the master key itself is not the card's key
    assert "Card cryptogram invalid" in plain.stdout + plain.stderr


def test_default_selected_application(card_for) -> None:
    """Card Reset at install (gp --privs CardReset: gp.jar 26.02.11's --default no longer adds it) and moved by gp
    --make-default; the default application answers SELECT without an AID, so gp.jar, which finds the ISD that
    way, is told the ISD's AID (-c) from then on, as with any card whose default is an applet."""
    card = card_for(CardManagerConfig("scp03"))
    card.gp("--install", str(ECHO_CAP), "--privs", "CardReset")
    isd = ["-c", "A000000151000000"]
    assert card.apdus("00A4040000", connect=isd[1])[0] == "9000"  # the echo applet's answer, not the ISD's FCI
    listing = card.listing(*isd)
    app = listing[listing.index(f"APP: {APPLET}"):]
    assert "Privs:    CardReset" in app.split("PKG:")[0]
    assert "CardReset" not in listing.split("APP:")[0]  # the ISD gave it up
    card.gp(*isd, "--create", INSTANCE, "--applet", APPLET, "--package", PKG, "--make-default", INSTANCE)
    listing = card.listing(*isd)
    assert "Privs:    CardReset" in listing[listing.index(f"APP: {INSTANCE}"):].split("PKG:")[0]
    assert "Privs:    CardReset" not in listing[listing.index(f"APP: {APPLET}"):listing.index(f"APP: {INSTANCE}")]


SSD = "A000000151535041AA01"


@pytest.mark.parametrize("name", list(FULL))
def test_supplementary_security_domain(card_for, name: str) -> None:
    """gp --domain (an SSD from the card's Security Domain package, gp's own 81 SCP parameter), --load --to the SSD,
    --move (INSTALL [for extradition]) back to the ISD, the SSD's own secure channel (-c), and --delete once empty."""
    card = card_for(FULL[name])
    isd = "A000000151000000"
    listing = card.listing("--domain", SSD)
    assert f"SSD: {SSD} (SELECTABLE)\n     Parent:   {isd}\n     From:     A0000001515350\n     Privs:    " \
        "SecurityDomain\n" in listing
    listing = card.listing("--load", str(ECHO_CAP), "--to", SSD, "--create", INSTANCE, "--applet", APPLET,
                           "--package", PKG)
    assert f"APP: {INSTANCE} (SELECTABLE)\n     Parent:   {SSD}\n" in listing  # with its load file's SD
    assert f"PKG: {PKG} (LOADED)\n     Parent:   {SSD}\n" in listing
    assert f"APP: {INSTANCE} (SELECTABLE)\n     Parent:   {isd}\n" in card.listing("--move", INSTANCE, "--to", isd)
    assert f"SSD: {SSD}" in card.listing("-c", SSD)  # the SSD's own secure channel (its keys: the card's initial)
    refused = card.gp("-c", SSD, "--delete", INSTANCE, ok=False)  # no content management through the SSD
    assert "0x6982" in refused.stdout + refused.stderr
    busy = card.gp("--delete", SSD, ok=False)  # §11.2.2.1: the package is still the SSD's
    assert "0x6985" in busy.stdout + busy.stderr
    assert f"PKG: {PKG} (LOADED)\n     Parent:   {isd}\n" in card.listing("--move", PKG, "--to", isd)
    assert SSD not in card.listing("--delete", SSD)  # (gp deletes before it moves: two runs)


def _dap_keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 1024-bit RSA DAP key (private and public PEM) and another private key: the wrong one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    paths = []
    for name in ("dap", "other"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        paths.append(tmp_path / f"{name}.pem")
        paths[-1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        if name == "dap":
            paths.append(tmp_path / "dap.pub.pem")
            paths[-1].write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return paths[0], paths[1], paths[2]


@pytest.mark.parametrize("name", list(FULL))
def test_dap_verification(card_for, name: str, tmp_path: Path) -> None:
    """gp --domain SSD --privs DAPVerification, the SSD's DAP key by -c SSD --put-key PUB --new-keyver 0x73 (an RSA
    public key in clear), then --load --to SSD --dap-key: signed with another key, or with no DAP block (-f), the
    card answers 6982 and keeps nothing; signed with the SSD's key the package loads into the SSD."""
    card = card_for(FULL[name])
    private, public, other = _dap_keys(tmp_path)
    assert "Privs:    SecurityDomain, DAPVerification\n" in card.listing("--domain", SSD, "--privs", "DAPVerification")
    card.gp("-c", SSD, "--put-key", str(public), "--new-keyver", "0x73")
    assert "Version: 115 (0x73) ID:   1 (0x01) type: RSA_PUB_N    length: 128 (RSA-1024 public, DAP Verification)" \
        in card.gp("-c", SSD, "-i").stdout
    for refused in (["--dap-key", str(other)], ["-f"]):  # -f: gp sends no DAP block rather than refusing to load
        done = card.gp("--load", str(ECHO_CAP), "--to", SSD, *refused, ok=False)
        assert done.returncode != 0 and "LOAD failed: 0x6982" in done.stdout + done.stderr, refused
        assert f"PKG: {PKG}" not in card.listing()
    listing = card.listing("--load", str(ECHO_CAP), "--to", SSD, "--dap-key", str(private))
    assert f"PKG: {PKG} (LOADED)\n     Parent:   {SSD}\n" in listing
