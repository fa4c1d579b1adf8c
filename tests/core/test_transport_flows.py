"""Flows, timeouts and removal on the transports: what happens when another program, a silent card or
an unplugged one is on the other side. The race and PIN tests run two real processes on one vpcd card."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import ConfigurationError, TransportError
from cardsuite.gp.client import GlobalPlatform, GPError
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.transport.base import DEFAULT_APDU_TIMEOUT, apdu_timeout
from cardsuite.transport.pcsc import PcscTransport
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, WalletLifeCycle, manifest_transport_keys
from cardsuite.wallet.issuer import Issuer, IssuerSecret
from cardsuite.wallet.store import WalletStore
from support import ECHO_AID, select_hex
from support.processes import suspended

PIN = "2580"
PUK = "11223344"
LIMITS = Limits(max_balance=5_000_000, max_payment=200_000, step_up=30_000)
SECRET = IssuerSecret(bytes.fromhex("5a" * 32), "test secret")  # the one tests/race_worker.py uses
CLI = [sys.executable, "-m", "cardsuite"]
SW_SECURITY_STATUS = 0x6982


def _pay(client: WalletClient):
    return client.transport.transmit(WalletClient.pay_command(10, b"SHOP0001", b"coffee", int(time.time() * 1000)))


def _provisioned(transport, project) -> WalletClient:
    """A personalised, active wallet with money on it, selected."""
    client = WalletClient(transport)
    keys = SECRET.card_keys(bytes(32))
    client.provision(manifest_transport_keys(project.manifest),
                     Personalisation.for_card("4111111111111111", secret=SECRET, holder=b"flows", limits=LIMITS,
                                              pin=PIN, puk=PUK, keys=keys))
    client.open_issuer_session(keys)
    client.credit(1_000)
    return client


# ---------------------------------------------------------------- every transport


@pytest.mark.e2e
@pytest.mark.parametrize("command", [b"", b"\x80", b"\x80\x01", b"\x80\x01\x00"], ids=len)
def test_a_command_shorter_than_its_header_is_refused_before_sending(card, command: bytes) -> None:
    card.select(ECHO_AID)
    with pytest.raises(TransportError, match="at least 4 bytes"):
        card.transmit_raw(command)
    assert card.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x2a", le=1)).data == b"\x2a"  # nothing reached the card


@pytest.mark.e2e
@pytest.mark.isolated
def test_a_reset_clears_the_verified_pin(card, project) -> None:
    client = _provisioned(card, project)
    client.select()
    client.verify_pin(PIN)
    assert _pay(client).sw == 0x9000  # verified: PAY works
    card.reset()
    client.select()
    assert _pay(client).sw == SW_SECURITY_STATUS


@pytest.mark.e2e
@pytest.mark.isolated
def test_a_flow_that_verified_the_pin_ends_with_it_gone(card, project) -> None:
    client = _provisioned(card, project)
    with client.flow():
        client.select()
        with client.flow():  # re-entrant: the inner flow's end is not the end
            client.verify_pin(PIN)
        assert _pay(client).sw == 0x9000
    client.select()
    assert _pay(client).sw == SW_SECURITY_STATUS
    with card.exclusive():  # a flow with no security command leaves the card as it was
        client.select()
    assert client.status().state == WalletLifeCycle.ACTIVE  # still selected: no reset


@pytest.mark.e2e
@pytest.mark.isolated
@pytest.mark.parametrize(("cla", "resets"), [
    (0x84, True),  # GlobalPlatform secure messaging, basic channel (b3)
    (0x61, True),  # ISO secure messaging on channel 5 (further class: b6)
    (0xE1, True),  # GlobalPlatform's mirror of that (GPCS 11.1.4: E0-EF); before, taken for plain
    (0xC1, False),  # plain, GlobalPlatform class on channel 5
], ids=lambda value: f"{value:02X}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
def test_a_flow_that_sent_secure_messaging_on_any_channel_ends_with_a_reset(card, cla: int, resets: bool) -> None:
    open_channel_1 = CommandAPDU(0x00, 0x70, 0x00, 0x01)  # MANAGE CHANNEL (ISO 7816-4 11.1.2)
    with card.exclusive():
        assert card.transmit(open_channel_1).sw == 0x9000
        card.transmit(CommandAPDU(cla, 0xCA, 0x00, 0x00, le=256))  # whatever it answers, it may have set state
    card.select(ECHO_AID)  # after a reset PC/SC takes a SELECT first
    assert card.transmit(open_channel_1).sw == (0x9000 if resets else 0x6A86)  # a reset closed channel 1


def test_a_locked_card_manager_says_the_card_is_locked(project) -> None:
    with SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03")) as transport:
        transport.manager.setCardLifeCycle(0x7F)
        with pytest.raises(GPError, match="the card is locked") as caught:
            GlobalPlatform(transport).select()
        assert caught.value.sw == 0x6283


# ---------------------------------------------------------------- vpcd: a silent card, a removed card


def test_a_card_that_stops_answering_times_out(vpcd_card) -> None:
    transport = PcscTransport(vpcd_card.reader, timeout=1.0)
    with transport:
        transport.select(ECHO_AID)
        with suspended(vpcd_card.process):  # every bridge thread stopped: SIGSTOP alone let it answer at times
            started = time.monotonic()
            with pytest.raises(TransportError, match="did not answer within 1 s"):
                transport.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x01", le=1))
            assert time.monotonic() - started < 5  # 1 s, the watchdog's look every 1/8 s, a loaded machine
            with pytest.raises(TransportError, match="did not answer"):  # the link is dead: said so at once
                transport.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x01", le=1))


def _thread_states(pid: int) -> list[str]:
    """The scheduler state of each thread of ``pid`` (proc(5): /proc/PID/task/TID/stat, field 3)."""
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            states.append(stat.read().rsplit(")", 1)[1].split()[0])
    return states


def test_a_suspended_bridge_has_stopped_all_its_threads_and_answers_again_after(vpcd_card) -> None:
    """What the timeout tests rely on: inside suspended() no thread of the bridge runs (right after a bare
    SIGSTOP some still did, and the card answered); after it the card answers."""
    for _ in range(20):
        with suspended(vpcd_card.process):
            assert set(_thread_states(vpcd_card.process.pid)) == {"T"}
    with PcscTransport(vpcd_card.reader, timeout=5.0) as transport:
        transport.select(ECHO_AID)
        assert transport.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x2a", le=1)).data == b"\x2a"


def test_the_cli_takes_the_timeout_from_the_environment(vpcd_card) -> None:
    with suspended(vpcd_card.process):
        done = subprocess.run([*CLI, "send", "--card", f"vpcd:{vpcd_card.slot}", select_hex(ECHO_AID)],
                              env={**os.environ, "CARDSUITE_APDU_TIMEOUT": "1"}, capture_output=True, text=True,
                              timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: the card in 'Virtual PCD 00 0") and "within 1 s" in done.stderr


def test_a_removed_card_says_card_removed(vpcd_card) -> None:
    with PcscTransport(vpcd_card.reader) as transport:
        transport.select(ECHO_AID)
        os.killpg(vpcd_card.process.pid, signal.SIGKILL)
        vpcd_card.process.wait()
        with pytest.raises(TransportError, match="card removed"):
            for _ in range(20):  # until pcscd notices
                transport.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x01", le=1))
                time.sleep(0.1)


# ---------------------------------------------------------------- vpcd: two programs on one card


def test_another_program_cannot_use_the_pin_this_one_verified(vpcd_card, project) -> None:
    with PcscTransport(vpcd_card.reader) as transport:
        _provisioned(transport, project)
    done = subprocess.run([*CLI, "wallet", "balance", "--card", f"vpcd:{vpcd_card.slot}"],
                          env={**os.environ, "CARDSUITE_PIN": PIN}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("balance: "), done.stderr
    with PcscTransport(vpcd_card.reader) as transport:  # the next program, which knows no PIN
        other = WalletClient(transport)
        assert _pay(other).sw != 0x9000  # not where the first left it
        other.select()
        assert _pay(other).sw == SW_SECURITY_STATUS


@pytest.mark.parametrize("first", [True, False], ids=["first-command", "later-command"])
def test_a_protocol_mismatch_before_the_first_command_is_taken_back(vpcd_card, monkeypatch: pytest.MonkeyPatch,
                                                                    first: bool) -> None:
    """pcsc-lite answers SCARD_E_PROTO_MISMATCH, sending nothing, when it powered the card up again after our
    connect (a program holding it was killed: the deploy crash sweep over vpcd, 2026-12-03). Before this
    connection's first command nothing of ours is lost: the handle is taken back and the command goes again.
    Later, what the card held for us may be gone: an error."""
    from smartcard import scard

    transmit, mismatches = scard.SCardTransmit, []

    def mismatching_once(handle, pci, command):  # noqa: ANN001, ANN202 - pyscard's own signature
        if not mismatches:
            mismatches.append(bytes(command))
            return scard.SCARD_E_PROTO_MISMATCH, []
        return transmit(handle, pci, command)

    with PcscTransport(vpcd_card.reader) as transport:
        if not first:
            assert transport.select(ECHO_AID).sw == 0x9000
        monkeypatch.setattr(scard, "SCardTransmit", mismatching_once)
        if first:
            assert transport.select(ECHO_AID).sw == 0x9000 and len(mismatches) == 1
        else:
            with pytest.raises(TransportError, match="Card protocol mismatch"):
                transport.select(ECHO_AID)
            assert transport.select(ECHO_AID).sw == 0x9000  # the error costs the connection nothing else


def test_a_flow_takes_the_card_back_however_often_other_programs_reset_it_meanwhile(vpcd_card) -> None:
    with PcscTransport(vpcd_card.reader) as ours, PcscTransport(vpcd_card.reader) as other:
        other.reset()  # ours hears of it at its next call
        resets_between = [2]  # then two more, each between our reconnect and our retry
        take_back = ours._reconnect_after_reset

        def take_back_and_lose_it_again() -> None:
            take_back()
            if resets_between[0]:
                resets_between[0] -= 1
                other.reset()

        ours._reconnect_after_reset = take_back_and_lose_it_again
        with ours.exclusive():
            assert ours.select(ECHO_AID).sw == 0x9000
        assert resets_between == [0]


def test_a_credit_over_secure_messaging_races_payments_without_a_failure(vpcd_card, project, tmp_path: Path) -> None:
    registry = WalletStore(tmp_path / "issuer.db")
    issuer = Issuer(registry, SECRET)
    with PcscTransport(vpcd_card.reader) as transport:
        client = WalletClient(transport)
        issued = issuer.issue(client, manifest_transport_keys(project.manifest), holder="Race", limits=LIMITS,
                              pin=PIN, puk=PUK)
        issuer.enrol(client, issued.account_id, evidence="checked", pin=PIN)
        issuer.credit(client, issued.account_id, 1_000)
    registry.close()
    worker = str(Path(__file__).parent / "race_worker.py")
    rounds = "15"
    common = [vpcd_card.reader, PIN, str(tmp_path / "issuer.db"), rounds, str(issued.account_id)]
    started = time.monotonic()
    racers = [subprocess.Popen([sys.executable, worker, role, *common], stdout=subprocess.PIPE, text=True)
              for role in ("credit", "pay")]
    outputs = [racer.communicate(timeout=180)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], "\n".join(outputs)
    assert time.monotonic() - started < 180
    with PcscTransport(vpcd_card.reader) as transport:
        client = WalletClient(transport)
        client.select()
        assert client.status().counter >= 2 * int(rounds)


def test_the_apdu_timeout_comes_from_the_option_the_environment_or_the_default() -> None:
    assert apdu_timeout(None, {}) == DEFAULT_APDU_TIMEOUT
    assert apdu_timeout(None, {"CARDSUITE_APDU_TIMEOUT": "2.5"}) == 2.5
    assert apdu_timeout("7", {"CARDSUITE_APDU_TIMEOUT": "2.5"}) == 7.0  # the command line wins
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigurationError, match="APDU timeout"):
            apdu_timeout(bad, {})
    transport = PcscTransport("any reader", timeout=2)  # not connected: nothing is asked of pcscd yet
    assert transport.command_timeout(bytes.fromhex("80F28000")) == 2
    assert transport.command_timeout(bytes.fromhex("80E80000")) == 8  # LOAD, like INSTALL and DELETE, 4x
