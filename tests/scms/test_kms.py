"""The KMS's token: card keys diversified inside it equal cardsuite.gp.keys's for a test master imported as
such (compared by full-block check values: nothing is read out), masters not extractable, every use audited,
and a card whose keys are KDF3-diversified opened with the token's master."""

from __future__ import annotations

import threading

import pytest
from cardsuite.crypto.aes import aes_cmac, aes_ecb, scp03_kdf
from cardsuite.crypto.des import tdes_ecb
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import DIVERSIFICATIONS, MasterKeys
from cardsuite.gp.scp import DERIVE_S_MAC, LEVELS, KeySet
from cardsuite.project import Project
from cardsuite.scms.kms import KmsError, TokenAes, TokenKeySet
from cardsuite.scms.system import ISSUER_MASTER, System
from cardsuite.sim.bridge import DEVELOPMENT_KEY, CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from support.threads import at_once

TEST_MASTER = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # a test vector, never a real key
KDD = bytes.fromhex("00010203040506070809")


@pytest.mark.parametrize("kdf", sorted(DIVERSIFICATIONS))
def test_token_diversification_equals_gp_keys(scms: System, kdf: str) -> None:
    uses: list[tuple[str, str, str]] = []
    with scms.kms(lambda *use: uses.append(use)) as kms:
        label = f"test-master-{kdf}"
        if kms.find(label) is None:
            kms.import_key(label, TEST_MASTER, kdf)
        derived = kms.derive_card_keys(label, kdf, KDD)
        expected = DIVERSIFICATIONS[kdf](TEST_MASTER, KDD)
        for role in ("enc", "mac", "dek"):
            key = getattr(expected, role)
            check = aes_ecb(key, bytes([1]) * 16) if kdf == "kdf3" else tdes_ecb(key, bytes(8))
            assert kms.check_value(derived[role]) == check, role
        # a different KDD gives different keys
        other = kms.derive_card_keys(label, kdf, bytes(10))
        assert kms.check_value(other["enc"]) != kms.check_value(derived["enc"])
    assert ("derive", label, f"{kdf} card keys for KDD 00010203..") in uses


def test_the_master_never_leaves_the_token(scms: System) -> None:
    import pkcs11

    with scms.kms() as kms:
        master = kms.key(ISSUER_MASTER)
        assert master[pkcs11.Attribute.EXTRACTABLE] is False
        assert master[pkcs11.Attribute.SENSITIVE] is True
        assert master[pkcs11.Attribute.ENCRYPT] is False  # only DERIVE: no cipher output under the master
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            master[pkcs11.Attribute.VALUE]
        with pytest.raises(KmsError, match="already holds"):
            kms.generate_master(ISSUER_MASTER, "kdf3")


def test_a_kdf3_card_opened_with_the_token_master(scms: System, project: Project) -> None:
    with scms.kms() as kms:
        label = "test-master-kdf3"
        if kms.find(label) is None:
            kms.import_key(label, TEST_MASTER, "kdf3")
        card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
        card.connect()
        try:
            gp = GlobalPlatform(card)
            gp.select()  # the card's keys become the test master's KDF3 diversification (PUT KEY in software)
            gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 1), LEVELS["mac"])
            gp.put_key(MasterKeys.of(TEST_MASTER, "kdf3", 0x30), replace=1)
            gp.select()
            gp.open_secure_channel(TokenKeySet(kms, label, "kdf3", 0x30), LEVELS["enc"])  # type: ignore[arg-type]
            assert gp.registry().isd is not None  # GET STATUS under C-MAC and C-DECRYPTION, through the token
        finally:
            card.disconnect()


CONCURRENT_USERS = 12  # ADS runs at once, each with a Kms (a session) of its own, as under the bench's terminals
ROUNDS = 6


def test_concurrent_key_use_in_one_process(scms: System) -> None:
    """Several threads using the token at once, each through its own session: every card key, session key
    and MAC comes out right. python-pkcs11 initialises the module with C_Initialize(NULL_PTR) (the application
    promises not to call it from two threads at once, so SoftHSM2 runs without its mutexes) and releases the
    GIL in every call: unserialised, concurrent runs failed with CKR_GENERAL_ERROR (10 of 50 at the bench)."""
    label = "test-master-kdf3"
    with scms.kms() as kms:
        if kms.find(label) is None:
            kms.import_key(label, TEST_MASTER, "kdf3")
    start = threading.Barrier(CONCURRENT_USERS)
    failures: list[str] = []
    checked: list[int] = []

    def user(index: int) -> None:
        start.wait()
        for round_ in range(ROUNDS):
            kdd, context, data = bytes((index, round_)) + bytes(8), bytes((index,)) * 16, bytes((round_,)) * 32
            mac = DIVERSIFICATIONS["kdf3"](TEST_MASTER, kdd).mac
            s_mac = scp03_kdf(mac, DERIVE_S_MAC, 128, context)
            try:
                with scms.kms() as kms:
                    ops = TokenAes(kms, label)
                    session_mac = ops.derive(kms.derive_card_keys(label, "kdf3", kdd)["mac"], DERIVE_S_MAC, 128,
                                             context)
                    for _ in range(4):
                        if ops.cmac(session_mac, data) != aes_cmac(s_mac, data):
                            failures.append(f"user {index} round {round_}: a wrong MAC")
            except Exception as exc:  # noqa: BLE001 - counted: the assertion below names them
                failures.append(f"user {index} round {round_}: {type(exc).__name__} {exc}")
            else:
                checked.append(index)

    at_once(user, ((i,) for i in range(CONCURRENT_USERS)))
    assert not failures, f"{len(failures)} of {CONCURRENT_USERS * ROUNDS} runs failed, e.g. {failures[:3]}"
    assert len(checked) == CONCURRENT_USERS * ROUNDS


@pytest.mark.parametrize("lengths", [(21,), (21, 261, 37), (16, 32, 5, 48, 255)],
                         ids=["one", "three", "whole-blocks-and-not"])
def test_a_runs_cmac_chain_in_one_token_operation_is_each_commands_cmac(scms: System, lengths: tuple[int, ...]) -> None:
    """TokenAes.cmac_chain (one AES-CBC in the token for a run) gives the C-MAC chain the software computes
    one CMAC at a time, for messages ending on a whole block and not; each message is one use."""
    uses: list[tuple[str, str, str]] = []
    label = "test-master-kdf3"
    messages = [bytes((n % 251, i)) * (n // 2) + bytes(n % 2) for i, n in enumerate(lengths)]
    with scms.kms(lambda *use: uses.append(use)) as kms:
        if kms.find(label) is None:
            kms.import_key(label, TEST_MASTER, "kdf3")
        ops = TokenAes(kms, label)
        context = bytes(range(16))
        s_mac = ops.derive(kms.derive_card_keys(label, "kdf3", KDD)["mac"], DERIVE_S_MAC, 128, context)
        uses.clear()
        chain = ops.cmac_chain(s_mac, bytes(range(16, 32)), messages)
        again = ops.cmac_chain(s_mac, chain[-1], messages)  # the subkey kept: the same chain from there
    software = DIVERSIFICATIONS["kdf3"](TEST_MASTER, KDD).mac
    expected, value = [], bytes(range(16, 32))
    for message in messages * 2:
        value = aes_cmac(scp03_kdf(software, DERIVE_S_MAC, 128, context), value + message)
        expected.append(value)
    assert chain + again == expected
    assert [operation for operation, _, _ in uses] == ["mac"] * (2 * len(messages))


def test_a_refusal_of_the_token_is_a_kms_error_naming_the_operation(scms: System) -> None:
    """What a request's record says when the token refuses (python-pkcs11's own errors have no text)."""
    with scms.kms() as kms:
        keys = kms.derive_card_keys(ISSUER_MASTER, scms.issuer_keys.kdf or "kdf3", KDD)  # not wrappable
        with pytest.raises(KmsError, match=r"^the KMS token refused wrap: \w+"):
            kms.wrap(keys["dek"], keys["enc"], ISSUER_MASTER)
