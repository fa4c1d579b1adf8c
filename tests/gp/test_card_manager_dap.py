"""DAP verification on the simulated card manager ([GPCS] GP Card Specification 2.3.1), in-process with SCP02 and
SCP03: a supplementary security domain with the DAP Verification privilege and its DAP key (PUT KEY of an RSA public
key, version 73, through the SSD's own secure channel) checks the DAP block of every load associated with it. A
correct signature loads; a wrong or missing one, or a domain without a DAP key, is 6982; a Load File Data Block that
does not match INSTALL [for load]'s hash is 6A80; nothing of a refused load stays on the card. Mandated DAP
Verification covers loads into any domain. Our client signs (cardsuite.gp.dap, `cardsuite gp load --dap-key`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardTornError, ConfigurationError
from cardsuite.gp.client import CLA_GP, INS_PUT_KEY, INS_SET_STATUS, GlobalPlatform, GPError
from cardsuite.gp.dap import DapSigner, block_hash, dap_block, put_key_data, read_public_key
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.tlv import encode_tlv
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.cardmanager import APPLET, DEV, ECHO, SCPS, SD_MODULE, SD_PACKAGE, SSD, empty_card_manager, isd_session

pytestmark = pytest.mark.sim_only  # resets and tears the in-process card

DAP_PRIVILEGES = b"\xc0\x00\x00"  # Security Domain + DAP Verification ([GPCS] Table 11-7)
MANDATED_PRIVILEGES = b"\xc1\x00\x00"  # + Mandated DAP Verification
PERSONALIZED = 0x0F  # a security domain's life cycle state ([GPCS] Table 11-5)
DAP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _signer(key: rsa.RSAPrivateKey) -> DapSigner:
    return DapSigner(key, "test key")


card = pytest.fixture(params=SCPS, name="card")(empty_card_manager)


def dap_domain(card: SimulatorTransport, privileges: bytes = DAP_PRIVILEGES, key: bool = True) -> GlobalPlatform:
    """An SSD that verifies DAPs and, with ``key``, holds DAP_KEY's public key; the ISD's session returned."""
    isd_session(card).install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=privileges)
    if key:
        domain = GlobalPlatform(card, isd=SSD)
        domain.open_secure_channel(DEV)  # the SSD's own channel, its keys the card's initial ones
        assert domain.put_dap_key(DAP_KEY.public_key()) == 0x73
    return isd_session(card)


def test_the_dap_key_is_in_the_ssd_key_information(card: SimulatorTransport) -> None:
    dap_domain(card)
    domain = GlobalPlatform(card, isd=SSD)
    domain.select()
    dap = [k for k in domain.key_info() if k.version == 0x73]
    assert [(k.key_id, k.components) for k in dap] == [(1, ((0xA1, 128), (0xA0, 3)))]  # modulus, exponent 65537
    isd_session(card)
    assert 0x73 not in {k.version for k in GlobalPlatform(card).key_info()}  # the SSD's, not the ISD's


def test_a_correctly_signed_load_into_the_domain_loads(card: SimulatorTransport) -> None:
    gp = dap_domain(card)
    gp.load_cap(ECHO, domain=SSD, dap=_signer(DAP_KEY))
    gp.install_for_install(ECHO.package_aid, APPLET)
    registry = gp.registry()
    loaded = registry.load_file(ECHO.package_aid)
    assert loaded is not None and loaded.domain == SSD
    assert registry.application(APPLET) is not None


@pytest.mark.parametrize("case", ["wrong key", "no DAP block", "block for another domain", "bad signature"])
def test_a_wrong_or_missing_dap_is_refused_and_nothing_stays(card: SimulatorTransport, case: str) -> None:
    gp = dap_domain(card)
    data_block = ECHO.load_file_data_block()
    digest = block_hash(data_block)
    signature = _signer(OTHER_KEY if case == "wrong key" else DAP_KEY).sign(digest)
    if case == "bad signature":
        signature = signature[:-1] + bytes((signature[-1] ^ 1,))
    blocks = {"no DAP block": b"", "block for another domain": dap_block(gp.isd or b"", signature)}
    dap = blocks.get(case, dap_block(SSD, signature))
    gp.install_for_load(ECHO.package_aid, SSD, block_hash=digest)
    with pytest.raises(GPError) as refused:
        gp.load(dap + encode_tlv(0xC4, data_block))
    assert refused.value.sw == 0x6982  # security status not satisfied
    assert gp.registry().load_file(ECHO.package_aid) is None
    gp.load_cap(ECHO, domain=SSD, dap=_signer(DAP_KEY))  # the card goes on: the right DAP loads
    assert gp.registry().load_file(ECHO.package_aid) is not None


def test_a_domain_without_its_dap_key_refuses_every_load(card: SimulatorTransport) -> None:
    gp = dap_domain(card, key=False)
    with pytest.raises(GPError) as refused:
        gp.load_cap(ECHO, domain=SSD, dap=_signer(DAP_KEY))
    assert refused.value.sw == 0x6982
    assert gp.registry().load_file(ECHO.package_aid) is None


def test_the_hash_is_required_and_checked(card: SimulatorTransport) -> None:
    gp = dap_domain(card)
    with pytest.raises(GPError) as no_hash:  # DAP verification applies: INSTALL [for load] must carry the hash
        gp.install_for_load(ECHO.package_aid, SSD)
    assert no_hash.value.sw == 0x6A80
    data_block = ECHO.load_file_data_block()
    other = block_hash(data_block + b"\x00")  # signed correctly, but not the hash of what is loaded
    gp.install_for_load(ECHO.package_aid, SSD, block_hash=other)
    with pytest.raises(GPError) as mismatch:
        gp.load(dap_block(SSD, _signer(DAP_KEY).sign(other)) + encode_tlv(0xC4, data_block))
    assert mismatch.value.sw == 0x6A80
    assert gp.registry().load_file(ECHO.package_aid) is None
    with pytest.raises(GPError) as bad_length:  # SHA-1 or SHA-2 only, by length
        gp.install_for_load(ECHO.package_aid, SSD, block_hash=bytes(17))
    assert bad_length.value.sw == 0x6A80


def test_loads_into_the_isd_need_no_dap_unless_one_is_mandated(card: SimulatorTransport) -> None:
    gp = dap_domain(card)
    gp.load_cap(ECHO)  # the ISD verifies no DAP; the SSD's DAP Verification covers only its own loads
    gp.delete(ECHO.package_aid)
    gp.delete(SSD)
    gp = dap_domain(card, MANDATED_PRIVILEGES)
    gp.load_cap(ECHO)  # Mandated DAP Verification is in force once the SSD is PERSONALIZED ([GPCS] 9.3.5)
    gp.delete(ECHO.package_aid)
    gp.send(CommandAPDU(CLA_GP, INS_SET_STATUS, 0x40, PERSONALIZED, SSD), "SET STATUS (SSD PERSONALIZED)")
    with pytest.raises(GPError) as refused:  # now every load carries the SSD's DAP ...
        gp.install_for_load(ECHO.package_aid)
    assert refused.value.sw == 0x6A80  # ... over the hash, which is then required
    gp.install_for_load(ECHO.package_aid, block_hash=block_hash(ECHO.load_file_data_block()))
    with pytest.raises(GPError) as unsigned:
        gp.load(ECHO.load_file())
    assert unsigned.value.sw == 0x6982
    gp.load_cap(ECHO, dap=_signer(DAP_KEY), dap_domain=SSD)  # into the ISD, with the SSD's DAP
    loaded = gp.registry().load_file(ECHO.package_aid)
    assert loaded is not None and loaded.domain == gp.isd


def test_dap_blocks_need_the_hash(card: SimulatorTransport) -> None:
    gp = isd_session(card)
    gp.install_for_load(ECHO.package_aid)  # no domain verifies: no hash needed for INSTALL [for load] ...
    with pytest.raises(GPError) as refused:  # ... but a Load File with DAP blocks needs one ([GPCS] C.2)
        gp.load(dap_block(gp.isd or b"", bytes(128)) + ECHO.load_file())
    assert refused.value.sw == 0x6A80
    assert gp.registry().load_file(ECHO.package_aid) is None


def test_no_load_file_is_extradited_to_a_dap_domain(card: SimulatorTransport) -> None:
    gp = dap_domain(card)
    gp.load_cap(ECHO)
    with pytest.raises(GPError) as refused:  # [GPCS] 9.4.1: the domain verified none of it
        gp.install_for_extradition(ECHO.package_aid, SSD)
    assert refused.value.sw == 0x6985
    loaded = gp.registry().load_file(ECHO.package_aid)
    assert loaded is not None and loaded.domain == gp.isd
    gp.install_for_install(ECHO.package_aid, APPLET)
    gp.install_for_extradition(APPLET, SSD)  # an application may go
    app = gp.registry().application(APPLET)
    assert app is not None and app.domain == SSD


def test_a_dap_block_after_the_data_block_is_malformed(card: SimulatorTransport) -> None:
    gp = dap_domain(card)
    data_block = ECHO.load_file_data_block()
    digest = block_hash(data_block)
    gp.install_for_load(ECHO.package_aid, SSD, block_hash=digest)
    with pytest.raises(GPError) as refused:  # [GPCS] 11.6.2.3: DAP blocks come first
        gp.load(encode_tlv(0xC4, data_block) + dap_block(SSD, _signer(DAP_KEY).sign(digest)))
    assert refused.value.sw == 0x6A80
    assert gp.registry().load_file(ECHO.package_aid) is None


def test_put_key_takes_1024_bit_rsa_public_keys_only(card: SimulatorTransport) -> None:
    isd_session(card).install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=DAP_PRIVILEGES)
    domain = GlobalPlatform(card, isd=SSD)
    domain.open_secure_channel(DEV)
    big = rsa.generate_private_key(public_exponent=65537, key_size=1536).public_key()  # fits one secured APDU
    with pytest.raises(GPError) as refused:
        domain.send(CommandAPDU(CLA_GP, INS_PUT_KEY, 0x00, 0x01, put_key_data(big), le=256), "PUT KEY")
    assert refused.value.sw == 0x9484  # algorithm not supported ([GPCS] 11.8.3.2)
    truncated = put_key_data(DAP_KEY.public_key())[:-10]
    with pytest.raises(GPError) as malformed:
        domain.send(CommandAPDU(CLA_GP, INS_PUT_KEY, 0x00, 0x01, truncated, le=256), "PUT KEY")
    assert malformed.value.sw == 0x6A80
    assert 0x73 not in {k.version for k in domain.key_info()}
    ber = put_key_data(DAP_KEY.public_key())
    assert ber[1:4] == b"\xa1\x81\x80"
    short = ber[:2] + b"\x80" + ber[4:]  # 128 also coded on one byte as 80 ([GPCS] 11.8.2.3.1)
    response = domain.send(CommandAPDU(CLA_GP, INS_PUT_KEY, 0x00, 0x01, short, le=256), "PUT KEY")
    assert response.data == b"\x73"  # the version, no check value for a public key
    assert [k.components for k in domain.key_info() if k.version == 0x73] == [((0xA1, 128), (0xA0, 3))]


def test_a_torn_dap_key_put_leaves_no_key(card: SimulatorTransport) -> None:
    isd_session(card).install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=DAP_PRIVILEGES)
    tear = 1
    while True:
        domain = GlobalPlatform(card, isd=SSD)
        domain.open_secure_channel(DEV)
        card.tear_after_writes(tear)
        try:
            domain.put_dap_key(DAP_KEY.public_key())
        except CardTornError:
            card.reset()
            domain = GlobalPlatform(card, isd=SSD)
            domain.select()
            assert 0x73 not in {k.version for k in domain.key_info()}, f"torn at write {tear}"
            tear += 1
            continue
        break
    assert tear == 3  # the key staged, then the commit: each torn once
    gp = isd_session(card)
    gp.load_cap(ECHO, domain=SSD, dap=_signer(DAP_KEY))
    assert gp.registry().load_file(ECHO.package_aid) is not None


def test_dap_keys_from_pem_files(tmp_path: Path) -> None:
    private = tmp_path / "dap.pem"
    private.write_bytes(DAP_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    public = tmp_path / "dap.pub.pem"
    public.write_bytes(DAP_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    assert read_public_key(public).public_numbers() == DAP_KEY.public_key().public_numbers()
    assert read_public_key(private).public_numbers() == DAP_KEY.public_key().public_numbers()
    assert str(DAP_KEY.private_numbers().d) not in repr(DapSigner.from_pem(private))  # never shown
    with pytest.raises(ConfigurationError, match="is not an unencrypted PEM private key"):
        DapSigner.from_pem(public)
    big = tmp_path / "big.pem"
    big.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ConfigurationError, match="2048-bit RSA key; DAP Scheme 1"):
        DapSigner.from_pem(big)


def _pem(path: Path, key: rsa.RSAPrivateKey) -> str:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def test_cli_put_dap_key_and_signed_load(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`cardsuite gp put-key --isd SSD --dap-key PEM` puts the SSD's DAP key; `gp load --sd SSD --dap-key PEM`
    signs; the wrong key is one line with 6982 and nothing loaded; bad options are one line before the card."""
    from test_gp_sim import _cli, _open_card

    card = _open_card(project, tmp_path, "scp03")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    isd_session(card.transport).install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=DAP_PRIVILEGES)
    key, other = _pem(tmp_path / "dap.pem", DAP_KEY), _pem(tmp_path / "other.pem", OTHER_KEY)
    status, out, err = _cli(card, ["gp", "put-key", "--isd", SSD.hex(), "--dap-key", key, "--dev-keys"], capsys)
    assert status == 0, err
    assert f"put the DAP verification key (RSA-1024) as version 0x73 of {SSD.hex().upper()}" in out
    fixture = str(Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap")
    status, _, err = _cli(card, ["gp", "load", fixture, "--sd", SSD.hex(), "--dap-key", other, "--dev-keys"], capsys)
    last = err.splitlines()[-1]  # after the LOAD progress, ended by the failure
    assert status == 1 and last.startswith("Error: LOAD block 4/4 failed: card answered 6982") and "DAP" in last, err
    assert isd_session(card.transport).registry().load_file(ECHO.package_aid) is None
    status, out, err = _cli(card, ["gp", "load", fixture, "--sd", SSD.hex(), "--dap-key", key, "--dev-keys"], capsys)
    assert status == 0, err
    assert f"DAP for {SSD.hex().upper()}" in out
    loaded = isd_session(card.transport).registry().load_file(ECHO.package_aid)
    assert loaded is not None and loaded.domain == SSD
    for argv, message in ((["put-key", "--dev-keys"], "--new-keys PROFILE (a key set) or --dap-key PEM"),
                          (["load", fixture, "--dap-sd", SSD.hex(), "--dev-keys"], "--dap-sd names the domain"),
                          (["load", fixture, "--dap-key", str(tmp_path / "none.pem"), "--dev-keys"],
                           "cannot read the DAP key")):
        status, _, err = _cli(card, ["gp", *argv], capsys)
        assert status == 1 and err.startswith("Error: ") and message in err and "\n" not in err.strip(), err
