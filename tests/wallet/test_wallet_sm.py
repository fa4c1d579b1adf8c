"""The issuer's secure messaging ([P000]): derivation, cryptograms and MACs checked against values
this module computes itself with `cryptography` (not with cardsuite.wallet.sm), and the refusals: a wrong
MAC, a replay, a command outside a session, each with its status word and the state unchanged."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from cardsuite.apdu import CommandAPDU, StatusError
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, WalletLifeCycle, manifest_transport_keys
from cardsuite.wallet.sm import IssuerKeys, IssuerSession, SecureMessagingError, session_keys
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from support import NUMBER_SECRET, PIN

CARD_NUMBER = "4111111111111111"
ISSUER = IssuerKeys(bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
                    bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0"))
LIMITS = Limits(max_balance=1_000_000, max_payment=100_000, step_up=20_000)


# ---------------------------------------------------------------- an independent implementation


def _des(key8: bytes, block: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(block) + op.finalize()


def _tdes_ecb(key16: bytes, data: bytes) -> bytes:
    op = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor()
    return op.update(data) + op.finalize()


def _tdes_cbc(key16: bytes, data: bytes) -> bytes:
    op = Cipher(TripleDES(key16 + key16[:8]), modes.CBC(bytes(8))).encryptor()
    return op.update(data) + op.finalize()


def _iso_pad(data: bytes) -> bytes:
    data += b"\x80"
    while len(data) % 8:
        data += b"\x00"
    return data


def _retail_mac(key16: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 algorithm 3 as the standard states it: full single-DES CBC under K1, then
    decrypt under K2 and encrypt under K1 (sm.py computes it another way)."""
    k1, k2 = key16[:8], key16[8:]
    h = bytes(8)
    padded = _iso_pad(data)
    for i in range(0, len(padded), 8):
        h = _des(k1, bytes(a ^ b for a, b in zip(h, padded[i:i + 8], strict=True)))
    return _des(k1, _des(k2, h, decrypt=True))


def _rd(r1: bytes, r2: bytes) -> bytes:
    # the paper: r_LSB is the left 4 bytes, r_MSB the right 4 bytes; R_d = r2_MSB ‖ r1_LSB ‖ r2_LSB ‖ r1_MSB
    r1_lsb, r1_msb, r2_lsb, r2_msb = r1[:4], r1[4:], r2[:4], r2[4:]
    return r2_msb + r1_lsb + r2_lsb + r1_msb


def _open_independently(wallet: WalletClient, master: IssuerKeys) -> tuple[bytes, bytes]:
    """Opens a session without cardsuite.wallet.sm: returns (S_E, S_A)."""
    r1 = os.urandom(8)
    answer = wallet.transport.send(CommandAPDU(0x80, 0x50, 0, 0, r1, le=256)).data
    r2, card_cryptogram = answer[1:9], answer[9:17]
    s_e, s_a = _tdes_ecb(master.enc, _rd(r1, r2)), _tdes_ecb(master.mac, _rd(r1, r2))
    assert _retail_mac(s_a, r1 + r2) == card_cryptogram
    wallet.transport.send(CommandAPDU(0x80, 0x82, 0, 0, _retail_mac(s_a, r2 + r1)))
    return s_e, s_a


def _wrap_independently(s_e: bytes, s_a: bytes, counter: int, ins: int, p1: int,  # noqa: PLR0917
                        data: bytes) -> CommandAPDU:
    encrypted = _tdes_cbc(s_e, _iso_pad(data))
    header = bytes((0x84, ins, p1, 0, len(encrypted) + 8))
    mac = _retail_mac(s_a, counter.to_bytes(2, "big") + header + encrypted)
    return CommandAPDU(0x84, ins, p1, 0, encrypted + mac)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def issued(module_card, project) -> Personalisation:
    perso = Personalisation.for_card(CARD_NUMBER, secret=NUMBER_SECRET,
                                     holder=b"SM test", limits=LIMITS, pin=PIN, puk="11223344", keys=ISSUER)
    WalletClient(module_card).provision(manifest_transport_keys(project.manifest), perso)
    return perso


@pytest.fixture
def wallet(card, issued) -> WalletClient:
    client = WalletClient(card)
    client.select()
    return client


def _balance(wallet: WalletClient) -> int:
    wallet.verify_pin(PIN)
    return wallet.get_balance()


# ---------------------------------------------------------------- host-only vectors


def test_sm_module_agrees_with_the_independent_implementation() -> None:
    r1, r2 = bytes.fromhex("0102030405060708"), bytes.fromhex("A1A2A3A4A5A6A7A8")
    assert _rd(r1, r2) == bytes.fromhex("A5A6A7A8" "01020304" "A1A2A3A4" "05060708")
    keys = session_keys(ISSUER, r1, r2)
    assert keys.enc == _tdes_ecb(ISSUER.enc, _rd(r1, r2))
    assert keys.mac == _tdes_ecb(ISSUER.mac, _rd(r1, r2))
    session = IssuerSession(keys, r1, r2, 1)
    for data in (b"", b"\x00", bytes(7), bytes(8), os.urandom(20)):
        expected = _wrap_independently(keys.enc, keys.mac, session.counter + 1, 0x52, 0, data)
        assert session.wrap(0x84, 0x52, 0, 0, data) == expected


def test_padding_keeps_trailing_zero_bytes() -> None:
    """The paper's zero padding would turn 00 00 into nothing; method 2 keeps them."""
    keys = session_keys(ISSUER, bytes(8), bytes(8))
    session = IssuerSession(keys, bytes(8), bytes(8), 1)
    for data in (b"", b"\x00\x00", b"\x12\x80", bytes(8)):
        assert session.unwrap(session.wrap(0x84, 0x52, 0, 0, data), session.counter) == data


# ---------------------------------------------------------------- the card


@pytest.mark.e2e
def test_card_derives_session_keys_as_the_paper_says(wallet: WalletClient) -> None:
    """The card cryptogram checks out with S_A derived from R_d by the test's own code, and a command
    wrapped by the test's own code is accepted."""
    before = _balance(wallet)
    s_e, s_a = _open_independently(wallet, ISSUER)
    credit = (1234).to_bytes(4, "big") + bytes(16)  # amount ‖ timestamp ‖ reference: ends in zero bytes
    wallet.transport.send(_wrap_independently(s_e, s_a, 1, 0x52, 0, credit))
    assert _balance(wallet) == before + 1234
    assert wallet.read_record(1).amount == 1234


def test_wrong_mac_is_refused_and_closes_the_session(wallet: WalletClient) -> None:
    before = _balance(wallet)
    s_e, s_a = _open_independently(wallet, ISSUER)
    good = _wrap_independently(s_e, s_a, 1, 0x52, 0, (5).to_bytes(4, "big") + bytes(16))
    forged = CommandAPDU(0x84, 0x52, 0, 0, good.data[:-1] + bytes((good.data[-1] ^ 1,)))
    assert wallet.transport.transmit(forged).sw == 0x6988
    assert wallet.transport.transmit(good).sw == 0x6982  # the session is gone
    assert _balance(wallet) == before


def test_changed_header_fails_the_mac(wallet: WalletClient) -> None:
    s_e, s_a = _open_independently(wallet, ISSUER)
    good = _wrap_independently(s_e, s_a, 1, 0xF0, 0x08, b"")  # SET STATUS blocked
    redirected = CommandAPDU(0x84, 0xF0, 0x10, 0, good.data)  # ... turned into TERMINATE
    assert wallet.transport.transmit(redirected).sw == 0x6988
    assert wallet.status().state == WalletLifeCycle.ACTIVE


def test_replayed_command_is_refused(wallet: WalletClient) -> None:
    before = _balance(wallet)
    wallet.open_issuer_session(ISSUER)
    command = wallet.session.wrap(0x84, 0x52, 0, 0, (700).to_bytes(4, "big") + bytes(16))
    assert wallet.transport.transmit(command).sw == 0x9000
    assert wallet.transport.transmit(command).sw == 0x6988  # same bytes, but the counter moved on
    assert _balance(wallet) == before + 700


def test_replay_into_a_new_session_is_refused(wallet: WalletClient) -> None:
    before = _balance(wallet)
    wallet.open_issuer_session(ISSUER)
    command = wallet.session.wrap(0x84, 0x52, 0, 0, (300).to_bytes(4, "big") + bytes(16))
    assert wallet.transport.transmit(command).sw == 0x9000
    wallet.open_issuer_session(ISSUER)  # counter 0 again, but other session keys
    assert wallet.transport.transmit(command).sw == 0x6988
    assert _balance(wallet) == before + 300


def test_skipped_counter_is_refused(wallet: WalletClient) -> None:
    s_e, s_a = _open_independently(wallet, ISSUER)
    skipped = _wrap_independently(s_e, s_a, 2, 0x52, 0, (5).to_bytes(4, "big") + bytes(16))
    assert wallet.transport.transmit(skipped).sw == 0x6988


@pytest.mark.parametrize("ins, p1", [(0x30, 0), (0x34, 0), (0x52, 0), (0xF0, 0x10)])
def test_issuer_commands_outside_a_session_are_refused(wallet: WalletClient, ins: int, p1: int) -> None:
    before = _balance(wallet)
    counter = wallet.status().counter
    wallet.select()
    for cla in (0x84, 0x80):
        assert wallet.transport.transmit(CommandAPDU(cla, ins, p1, 0, os.urandom(24))).sw == 0x6982
    assert wallet.status().state == WalletLifeCycle.ACTIVE
    assert wallet.status().counter == counter
    assert _balance(wallet) == before


def test_session_needs_the_host_cryptogram(wallet: WalletClient) -> None:
    r1 = os.urandom(8)
    wallet.initialize_update(r1)
    assert wallet.transport.transmit(CommandAPDU(0x80, 0x82, 0, 0, os.urandom(8))).sw == 0x6300
    # the challenge is used up: the right cryptogram now comes too late
    assert wallet.transport.transmit(CommandAPDU(0x80, 0x82, 0, 0, os.urandom(8))).sw == 0x6985
    assert wallet.transport.transmit(CommandAPDU(0x84, 0x52, 0, 0, os.urandom(24))).sw == 0x6982


def test_external_authenticate_needs_initialize_update(wallet: WalletClient) -> None:
    assert wallet.transport.transmit(CommandAPDU(0x80, 0x82, 0, 0, bytes(8))).sw == 0x6985


def test_a_card_with_other_keys_is_detected_before_the_host_cryptogram(wallet: WalletClient) -> None:
    with pytest.raises(SecureMessagingError):
        wallet.open_issuer_session(IssuerKeys.generate())
    assert wallet.session is None


def test_transport_keys_are_retired_by_personalisation(wallet: WalletClient, project) -> None:
    assert wallet.status().key_version == 0x01
    assert wallet.transport.transmit(CommandAPDU(0x80, 0x50, 0xFF, 0, bytes(8), le=256)).sw == 0x6A88
    with pytest.raises(SecureMessagingError):
        wallet.open_issuer_session(replace(manifest_transport_keys(project.manifest), version=0))


def test_selecting_again_ends_the_session(wallet: WalletClient) -> None:
    wallet.open_issuer_session(ISSUER)
    command = wallet.session.wrap(0x84, 0x52, 0, 0, (1).to_bytes(4, "big") + bytes(16))
    wallet.transport.select(wallet.aid)
    assert wallet.transport.transmit(command).sw == 0x6982


@pytest.mark.parametrize("length, sw", [(8, 0x6987), (20, 0x6988)])
def test_malformed_secured_data(wallet: WalletClient, length: int, sw: int) -> None:
    wallet.open_issuer_session(ISSUER)
    assert wallet.transport.transmit(CommandAPDU(0x84, 0x52, 0, 0, os.urandom(length))).sw == sw
    with pytest.raises(StatusError) as caught:
        wallet.credit(1)
    assert caught.value.sw == 0x6982  # the session was closed by the error


def test_wrong_plaintext_length_keeps_the_session(wallet: WalletClient) -> None:
    wallet.open_issuer_session(ISSUER)
    with pytest.raises(StatusError) as caught:
        wallet.secure(0x52, data=(1).to_bytes(4, "big"))
    assert caught.value.sw == 0x6700
    wallet.credit(1)  # counters still agree


@pytest.mark.isolated
def test_issuer_keys_block_after_ten_failed_authentications_in_a_row(card, project) -> None:
    """Host cryptograms cannot be tried forever: ten wrong ones in a row block the keys (6983), a
    right one in between gives all tries back."""
    wallet = WalletClient(card)
    wallet.select()
    transport_keys = manifest_transport_keys(project.manifest)

    def wrong_attempt() -> int:
        wallet.initialize_update(os.urandom(8))
        return card.transmit(CommandAPDU(0x80, 0x82, 0, 0, os.urandom(8))).sw

    assert [wrong_attempt() for _ in range(9)] == [0x6300] * 9
    wallet.open_issuer_session(transport_keys)  # the tenth attempt is right: all tries back
    assert [wrong_attempt() for _ in range(10)] == [0x6300] * 10
    assert card.transmit(CommandAPDU(0x80, 0x50, 0, 0, os.urandom(8), le=256)).sw == 0x6983
    with pytest.raises(StatusError) as caught:
        wallet.open_issuer_session(transport_keys)  # even the right keys: blocked for good
    assert caught.value.sw == 0x6983
    card.reset()
    wallet.select()
    assert card.transmit(CommandAPDU(0x80, 0x50, 0, 0, os.urandom(8), le=256)).sw == 0x6983
