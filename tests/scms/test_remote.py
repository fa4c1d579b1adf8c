"""The terminal link end to end: a real `cardsuite scms serve` process (TLS 1.3, its own CA), the agent in this
process relaying to an empty simulated card: a remote post-issuance of the ISO applet; a revoked token, a
wrong CA and a replayed relay message refused."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from cardsuite.apdu import StatusError
from cardsuite.cli.scms import cmd_agent
from cardsuite.errors import ConfigurationError, TransportError
from cardsuite.project import Project
from cardsuite.scms.agent import RUN_PROGRESS_EVERY, AgentError, _open_tls, run_request, tls_context
from cardsuite.scms.pki import make_ca_and_server
from cardsuite.scms.relay import RELAY_PROTOCOL, RelayTransport
from cardsuite.scms.server import Server
from cardsuite.scms.system import System, add_terminal, revoke_terminal
from cardsuite.settings import ENV_PIN, ENV_SCMS_TOKEN
from cardsuite.sim.bridge import DEVELOPMENT_KEY, CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.wallet.card import WALLET_AID, WalletClient
from cardsuite.wallet.store import SCHEMA_VERSION, WalletStore

from tests.scms.conftest import card_identity
from tests.support.cardlink import CardLink

ISO_APPLET = bytes.fromhex("0011223344552001")
TRANSPORT_3DES = "transport-3des"  # the development keys as a two-key 3DES key (SCP02 cards)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(process: subprocess.Popen, port: int, ca: Path) -> None:
    """Until the server answers a TLS 1.3 handshake with a certificate from ``ca``."""
    context = tls_context(ca)
    for _ in range(150):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() == "TLSv1.3"
                return
        except OSError:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode()) from None  # type: ignore[union-attr]
            time.sleep(0.2)
    raise AssertionError(f"no server on port {port}")


@pytest.fixture(scope="module")
def server(scms_folder: System) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cardsuite", "scms", "serve", "--dir", str(scms_folder.folder),
                                "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    _wait_for(process, port, scms_folder.ca)
    yield url
    process.terminate()
    process.wait(10)


def test_remote_post_issuance(server: str, scms_folder: System, card: SimulatorTransport,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    token = add_terminal(scms_folder, f"kiosk-{time.monotonic_ns()}")
    db = scms_folder.database()
    cin = card_identity(card)
    db.upsert_card(cin, "SECURED")
    shown: list[str] = []
    resets: list[bytes] = []
    reset = card.reset
    monkeypatch.setattr(card, "reset", lambda: resets.append(reset()) or resets[-1])
    result = run_request(server, scms_folder.ca, token, card, action="install", target="isoapplet",
                         progress=shown.append)
    # one reset, the agent's at the end of its flow (the ADS asks for none): no secure channel outlives the link
    assert result.cin == cin and result.relayed > 10 and len(resets) == 1
    assert card.select(ISO_APPLET).sw == 0x9000
    record = db.request(result.request)
    assert record is not None and record.state == "done"
    assert any("install isoapplet: ok" in line for line in shown), shown
    # the loads and the install went as one run, which the agent told in pieces as the card did them
    assert any(line.startswith(f"    card: {RUN_PROGRESS_EVERY}/") for line in shown), shown
    # the agent held no key: what it relayed is what the server recorded, INITIALIZE UPDATE included
    assert any(c.startswith("80 50") for _, c, _, _ in db.exchanges(result.request))


@pytest.mark.parametrize("target", ["wallet-sim", ["isoapplet", "wallet-sim"]], ids=["wallet", "two-in-one-request"])
def test_remote_wallet_with_the_pin_chosen_at_the_terminal(server: str, scms_folder: System,
                                                           card: SimulatorTransport, target: str | list[str]) -> None:
    token = add_terminal(scms_folder, f"phone-{time.monotonic_ns()}")
    db = scms_folder.database()
    cin = card_identity(card)
    db.upsert_card(cin, "OP_READY")
    asked: list[str] = []
    result = run_request(server, scms_folder.ca, token, card, action="install", target=target,
                         ask_pin=lambda puk: (asked.append(puk), "1357")[1])
    names = target if isinstance(target, list) else [target]
    # the outcome names the applications (the wallet-sim profile's is named wallet)
    assert len(asked) == 1 and result.outcome.startswith(f"install {', '.join(names).replace('-sim', '')}:")
    record = db.request(result.request)  # one request, whatever the number of applications
    assert record is not None and record.state == "done" and record.target == " ".join(names)
    if len(names) > 1:  # both deployed in one run
        assert card.select(ISO_APPLET).sw == 0x9000
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin("1357")


def test_the_agent_command_gives_the_puk_in_a_new_private_file(server: str, scms_folder: System,
                                                              card: SimulatorTransport, *, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`cardsuite agent --puk-file` (stdout a pipe, as a kiosk's log): the PUK goes into the file alone, mode 600,
    and unblocks the wallet; the PIN comes from the environment."""
    token = add_terminal(scms_folder, f"kiosk-{time.monotonic_ns()}")
    cin = card_identity(card)
    scms_folder.database().upsert_card(cin, "OP_READY")
    monkeypatch.setenv(ENV_PIN, "1357")
    monkeypatch.setenv(ENV_SCMS_TOKEN, token)
    puk_file = tmp_path / "puk.txt"
    args = argparse.Namespace(server=[server], ca=scms_folder.ca, token_file=None, open_timeout="20",
                              puk_file=str(puk_file), action="install", target=["wallet-sim"])
    assert cmd_agent(args, lambda _args: nullcontext(card)) == 0
    out = capsys.readouterr().out
    puk = puk_file.read_text().strip()
    assert len(puk) == 8 and puk.isdigit() and puk not in out and f"the PUK is in {puk_file}" in out, out
    assert stat.S_IMODE(puk_file.stat().st_mode) == 0o600
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    assert wallet.pin_tries_left() == 3
    with pytest.raises(StatusError):
        wallet.verify_pin("0000")
    wallet.unblock_pin(puk, "2468")  # the PUK written is the wallet's
    wallet.verify_pin("2468")
    with pytest.raises(ConfigurationError, match="a new file in an existing folder"):  # never over the first
        cmd_agent(args, lambda _args: nullcontext(card))


def test_a_cardholder_who_left_at_the_pin_step_is_asked_again_by_the_next_run(
        server: str, scms_folder: System, card: SimulatorTransport) -> None:
    token = add_terminal(scms_folder, f"kiosk-{time.monotonic_ns()}")
    db = scms_folder.database()
    cin = card_identity(card)
    db.upsert_card(cin, "OP_READY")
    shown: list[str] = []

    def walks_away(puk: str) -> str:
        shown.append(puk)
        raise ConfigurationError("the cardholder cancelled")

    with pytest.raises(AgentError, match="the cardholder cancelled; the wallet keeps its one-time PIN"):
        run_request(server, scms_folder.ca, token, card, action="install", target="wallet-sim", ask_pin=walks_away)
    result = run_request(server, scms_folder.ca, token, card, action="install", target="wallet-sim",
                         ask_pin=lambda puk: (shown.append(puk), "1357")[1])
    assert db.request(result.request).state == "done" and db.owed_pins(cin) == {}  # type: ignore[union-attr]
    assert len(shown) == 2 and shown[0] == shown[1]  # the same PUK: the one the card holds
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin("1357")


def test_a_request_whose_target_is_not_a_string_closes_the_link(server: str, scms_folder: System,
                                                                card: SimulatorTransport) -> None:
    from websockets.sync.client import connect

    token = add_terminal(scms_folder, f"list-{time.monotonic_ns()}")
    url = server.replace("https://", "wss://") + "/terminal"
    with connect(url, ssl=tls_context(scms_folder.ca), additional_headers={"Authorization": f"Bearer {token}"}) as link:
        link.send(json.dumps({"type": "request", "seq": 1, "action": "install", "target": ["isoapplet"],
                              "atr": card.atr.hex()}))
        with pytest.raises(Exception):  # noqa: B017 - the server closes: websockets' ConnectionClosed
            link.recv(timeout=20)
        assert link.close_code == 4400 and "and target names" in (link.close_reason or "")


def test_an_agent_of_the_old_relay_protocol_is_refused_before_a_request_is_made(
        server: str, scms_folder: System, card: SimulatorTransport) -> None:
    from websockets.sync.client import connect

    name = f"old-agent-{time.monotonic_ns()}"
    token = add_terminal(scms_folder, name)
    url = server.replace("https://", "wss://") + "/terminal"
    with connect(url, ssl=tls_context(scms_folder.ca), additional_headers={"Authorization": f"Bearer {token}"}) as link:
        link.send(json.dumps({"type": "request", "seq": 1, "action": "install", "target": "isoapplet",
                              "atr": card.atr.hex()}))  # no protocol: version 1, one message per answer
        with pytest.raises(Exception):  # noqa: B017 - the server closes: websockets' ConnectionClosed
            link.recv(timeout=20)
        assert link.close_code == 4400
        assert link.close_reason == "the agent speaks relay protocol 1, this server 3: update the terminal's cardsuite"
    assert scms_folder.database().query("SELECT id FROM scms_requests WHERE terminal = ?", (name,)) == []


def test_revoked_token_and_wrong_ca_are_refused(server: str, scms_folder: System, card: SimulatorTransport,
                                                tmp_path: Path) -> None:
    name = f"lost-{time.monotonic_ns()}"
    token = add_terminal(scms_folder, name)
    revoke_terminal(scms_folder, name)
    with pytest.raises(AgentError, match="refused the terminal"):
        run_request(server, scms_folder.ca, token, card, action="install", target="isoapplet")
    other_ca, _, _ = make_ca_and_server(tmp_path / "other", ["127.0.0.1"])
    with pytest.raises(AgentError, match="not from the pinned CA"):
        run_request(server, other_ca, token, card, action="install", target="isoapplet")


def test_every_link_opens_and_the_server_gives_no_session_ticket(server: str, scms_folder: System) -> None:
    """TLS 1.3 session tickets, sent after the handshake, stalled about one WebSocket handshake in 400 on
    these machines (no answer to the upgrade within the agent's 20 s): the server sends none (no agent resumes
    a session), and link after link opens at once."""
    from websockets.sync.client import connect

    token = add_terminal(scms_folder, f"links-{time.monotonic_ns()}")
    port = int(server.rsplit(":", 1)[1])
    for attempt in range(200):
        tls = _open_tls(server, tls_context(scms_folder.ca), 5)
        tls.settimeout(5)
        with connect(f"ws://127.0.0.1:{port}/terminal", sock=tls, open_timeout=2,
                     additional_headers={"Authorization": f"Bearer {token}"}):
            # the upgrade's answer came after any ticket the server sent: the client has seen it by now
            assert tls.session is not None and not tls.session.has_ticket, attempt


def test_serving_holds_the_issuers_wallet_records_open_and_checkpoints_them_at_its_end(
        scms: System, project: Project, tmp_path: Path) -> None:
    """While the server runs, the issuer's wallet.db is open at this cardsuite's schema: a personalisation's own
    connection, opened and closed, leaves the write-ahead log in place (the last connection to close would
    checkpoint and delete it); the server's end checkpoints it into the file, nothing lost."""
    from starlette.testclient import TestClient

    system = dataclasses.replace(scms, folder=tmp_path / "scms")
    log = system.wallet_db.with_name(system.wallet_db.name + "-wal")
    with TestClient(Server(system, project).app(), base_url="https://testserver"):
        with WalletStore(system.wallet_db) as store:  # as WalletPersonaliser.personalise opens it
            assert store.schema_version == SCHEMA_VERSION
            with store.transaction() as db:
                db.execute("INSERT INTO meta (key, value) VALUES ('probe', 'kept')")
        assert log.is_file()
    assert not log.exists()
    with WalletStore(system.wallet_db, read_only=True) as store:
        assert store.db.execute("SELECT value FROM meta WHERE key = 'probe'").fetchone() == ("kept",)


@pytest.mark.parametrize("numbers", [(2, 2), (3,)], ids=["replayed", "reordered"])
def test_a_replayed_relay_message_closes_the_link(server: str, scms_folder: System, card: SimulatorTransport,
                                                  numbers: tuple[int, ...]) -> None:
    from websockets.sync.client import connect

    token = add_terminal(scms_folder, f"replay-{time.monotonic_ns()}")
    db = scms_folder.database()
    db.upsert_card(card_identity(card), "SECURED")
    url = server.replace("https://", "wss://") + "/terminal"
    with connect(url, ssl=tls_context(scms_folder.ca), additional_headers={"Authorization": f"Bearer {token}"}) as link:
        link.send(json.dumps({"type": "request", "seq": 1, "action": "install", "target": "isoapplet",
                              "protocol": RELAY_PROTOCOL, "atr": card.atr.hex()}))
        while True:  # the first command: one, or the first of a run (SELECT and GET DATA)
            message = json.loads(link.recv(timeout=20))
            if message["type"] in ("apdu", "apdus"):
                break
        run = message["type"] == "apdus"
        answer = card.transmit_raw(bytes.fromhex(message["apdus"][0] if run else message["apdu"])).hex()
        for seq in numbers:  # the same number twice, or one skipped
            link.send(json.dumps({"type": "response", "seq": seq, "command": message["seq"],
                                  **({"rapdus": [answer]} if run else {"rapdu": answer})}))
        with pytest.raises(Exception):  # noqa: B017 - the server closes: websockets' ConnectionClosed
            for _ in range(50):
                link.recv(timeout=20)
        assert link.close_code == 4400 and "replayed or out of order" in (link.close_reason or "")
    assert ssl.TLSVersion.TLSv1_3  # the module's claim: checked by the fixture's handshake


@pytest.mark.e2e
def test_the_agent_command_over_vpcd(server: str, scms_folder: System, tmp_path: Path,
                                     pytestconfig: pytest.Config) -> None:
    """`cardsuite agent --card vpcd:N` as a process: the card behind pcscd, the keys in the server's token."""
    if pytestconfig.getoption("--cardsuite-card") != "vpcd":
        pytest.skip("the agent talks to a card through pcscd: run with --card vpcd")
    from cardsuite.sim.bridge import CardManagerConfig
    from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots

    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    token_file = tmp_path / "token"
    token_file.write_text(add_terminal(scms_folder, f"vpcd-{time.monotonic_ns()}"))
    with VpcdSimulator(slot=slots[0], applets=[], card_manager=CardManagerConfig("scp03")) as simulator:
        transport = simulator.transport()
        transport.connect()
        try:
            cin = card_identity(transport)  # type: ignore[arg-type]
        finally:
            transport.disconnect()
        scms_folder.database().upsert_card(cin, "SECURED")
        done = subprocess.run([sys.executable, "-m", "cardsuite", "agent", "--server", server, "--ca",
                               str(scms_folder.ca), "--token-file", str(token_file), "install", "isoapplet",
                               "--card", f"vpcd:{slots[0]}"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"card {cin}, install isoapplet" in done.stdout, done.stdout
        assert "install isoapplet: ok" in done.stdout


class _DiesMidLoad(CardLink):
    """The agent's card link, dying at the ``after``-th LOAD block of the second package (the agent process
    killed mid-LOAD: the relay stops there, the WebSocket goes down)."""

    def __init__(self, card: SimulatorTransport, after: int) -> None:
        super().__init__(card)
        self._after = after
        self._install_for_load = 0
        self._loads = 0

    def transmit_raw(self, command: bytes) -> bytes:
        if command[1] == 0xE6 and command[2] == 0x02:  # INSTALL [for load]
            self._install_for_load += 1
        if command[1] == 0xE8 and self._install_for_load == 2:
            self._loads += 1
            if self._loads > self._after:
                raise TransportError("the terminal died mid-LOAD")
        return self._card.transmit_raw(command)


def test_an_agent_killed_mid_load_is_resumed_by_the_next_run(server: str, scms_folder: System,
                                                             card: SimulatorTransport) -> None:
    name = f"dies-{time.monotonic_ns()}"
    token = add_terminal(scms_folder, name)
    db = scms_folder.database()
    cin = card_identity(card)
    db.upsert_card(cin, "SECURED")
    with pytest.raises(TransportError, match="mid-LOAD"):
        run_request(server, scms_folder.ca, token, _DiesMidLoad(card, 2), action="install",  # type: ignore[arg-type]
                    target="isoapplet")
    first = db.query("SELECT id FROM scms_requests WHERE terminal = ?", (name,))[0][0]
    for _ in range(900):  # the server notices the link down and ends the request (a loaded machine: slowly)
        record = db.request(first)
        if record is not None and record.state != "running":
            break
        time.sleep(0.1)
    assert record is not None and record.state == "failed" and record.reason, record
    # the loads went in one run, whose answers never came back: none is recorded done (behind the card, which
    # holds the first package whole), and the next run reads the card and finishes from where it is
    assert not any(n.startswith("load") for _, n, _, _ in db.steps(first))
    result = run_request(server, scms_folder.ca, token, card, action="install", target="isoapplet")
    steps = {(n, o) for _, n, o, _ in db.steps(result.request)}
    assert ("load isoapplet", "ok") in steps and ("load isofs", "ok") not in steps, steps  # resumed, not redone
    assert card.select(ISO_APPLET).sw == 0x9000


def test_the_agent_command_goes_on_through_its_next_server(server: str, scms_folder: System, tmp_path: Path) -> None:
    """`cardsuite agent --server A --server B`: A does not answer, the request goes to B. B's ADS refuses the
    command's own simulated card (`--card sim` has no card manager): its recorded refusal, the one the agent
    reports, proves the request got there."""
    token_file = tmp_path / "token"
    name = f"failover-{time.monotonic_ns()}"
    token_file.write_text(add_terminal(scms_folder, name))
    dead = f"https://127.0.0.1:{_free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    done = subprocess.run([sys.executable, "-m", "cardsuite", "agent", "--server", dead, "--server", server, "--ca",
                           str(scms_folder.ca), "--token-file", str(token_file), "install", "isoapplet",
                           "--card", "sim"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot reach the SCMS at {dead}" in done.stdout and f"again through {server}" in done.stdout, done.stdout
    assert "(before the request was sent)" in done.stdout  # the dead server holds no request of it
    rows = scms_folder.database().query("SELECT state, reason FROM scms_requests WHERE terminal = ?", (name,))
    assert len(rows) == 1 and rows[0][0] == "failed" and "no card manager answers" in rows[0][1], rows
    assert done.stderr.strip().splitlines() == [f"Error: the request failed: {rows[0][1]}"]
    bad = subprocess.run([sys.executable, "-m", "cardsuite", "agent", "--server", server, "--server",
                          "http://127.0.0.1:9", "--ca", str(scms_folder.ca), "--token-file", str(token_file),
                          "install", "isoapplet"], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "Error: --server 'http://127.0.0.1:9': the SCMS is reached over https:// only"]


class _RefusesLoadBlock(CardLink):
    """The agent's card, out of memory at the ``refused``-th LOAD block of the first package (6A84, as a card
    answers when the load file does not fit): counts the LOAD blocks that reach it."""

    def __init__(self, card: SimulatorTransport, refused: int) -> None:
        super().__init__(card)
        self._refused = refused
        self.loads = 0

    def transmit_raw(self, command: bytes) -> bytes:
        if command[1] == 0xE8:
            self.loads += 1
            if self.loads == self._refused:
                return b"\x6a\x84"
        return self._card.transmit_raw(command)


@pytest.mark.parametrize(("refused", "block"), [(3, "3/10"), (40, "5/11")], ids=["first-piece", "later-piece"])
def test_load_blocks_go_in_runs_that_stop_at_the_first_refused_block(server: str, scms_folder: System,
                                                                     card: SimulatorTransport, refused: int,
                                                                     block: str) -> None:
    """The ADS sends LOAD blocks in runs (one message, no round trip per block); the agent stops at the
    first answer that is not 9000 (in the first of the pieces it tells the run in, or a later one: isofs's 10
    blocks, isocmd's 25, then isoapplet's), the request fails naming that block, every exchange up to it is
    recorded, and the next run loads the card whole."""
    token = add_terminal(scms_folder, f"full-{time.monotonic_ns()}")
    db = scms_folder.database()
    cin = card_identity(card)
    db.upsert_card(cin, "SECURED")
    refusing = _RefusesLoadBlock(card, refused)
    shown: list[str] = []
    with pytest.raises(AgentError, match=rf"LOAD block {block} failed: card answered 6A84"):
        run_request(server, scms_folder.ca, token, refusing, action="install",  # type: ignore[arg-type]
                    target="isoapplet", progress=shown.append)
    assert refusing.loads == refused  # nothing after the refused block reached the card
    told = [line for line in shown if line.startswith("    card: ")]
    assert len(told) == (refused + 2) // RUN_PROGRESS_EVERY, told  # pieces done whole (INSTALLs [for load] too)
    failed = db.query("SELECT id, state FROM scms_requests WHERE cin = ? ORDER BY id", (cin,))[-1]
    assert failed[1] == "failed"
    loads = [sw for _, command, _, sw in db.exchanges(failed[0]) if command[3:5] == "E8"]
    assert loads == [0x9000] * (refused - 1) + [0x6A84]
    result = run_request(server, scms_folder.ca, token, card, action="install", target="isoapplet")
    exchanges = db.exchanges(result.request)
    assert len(exchanges) == result.relayed  # every command relayed is recorded
    blocks = sum(command[3:5] == "E8" for _, command, _, _ in exchanges)
    runs = 2 * -(-blocks // RelayTransport.load_window)  # two load files' runs of LOAD blocks, at most
    assert blocks > 4 * runs and result.round_trips <= result.relayed - blocks + runs
    assert card.select(ISO_APPLET).sw == 0x9000


class _SilentServer:
    """A listener that completes TCP and TLS 1.3 (with the certificate in ``tls``, pki's layout) and then never
    answers the WebSocket handshake: the session tickets TLS 1.3 sends after its handshake are all the agent
    gets."""

    def __init__(self, tls: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_3
        self._context.load_cert_chain(tls / "server.pem", tls / "server.key")
        self.ca = tls / "ca.pem"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self.handshakes = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                self._held.append(self._context.wrap_socket(raw, server_side=True))
                self.handshakes += 1
            except (OSError, ssl.SSLError):
                raw.close()

    def close(self) -> None:
        self._listener.close()
        for held in self._held:
            held.close()


def test_the_agent_sends_each_message_at_once(tmp_path: Path) -> None:
    """No Nagle delay on the terminal's socket: a run's responses go out one by one as the card answers."""
    from cardsuite.scms.agent import _open_tls

    make_ca_and_server(tmp_path / "silent", ["127.0.0.1"])
    silent = _SilentServer(tmp_path / "silent")
    try:
        with _open_tls(silent.url, tls_context(silent.ca), 5) as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        silent.close()


def test_a_server_silent_after_tls_fails_within_the_open_timeout(tmp_path: Path, card: SimulatorTransport) -> None:
    """TLS done, no HTTP answer: one clear error within the agent's open timeout (websockets' own TLS left its
    reader blocked in SSLSocket.read and the agent hung for minutes)."""
    make_ca_and_server(tmp_path / "silent", ["127.0.0.1"])
    silent = _SilentServer(tmp_path / "silent")
    outcome: list[BaseException] = []

    def agent() -> None:
        try:
            run_request(silent.url, silent.ca, "token", card, action="install", target="isoapplet", open_timeout=2)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            outcome.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    thread.join(30)
    elapsed = time.monotonic() - start
    silent.close()
    assert not thread.is_alive(), "the agent hung on a server that never answers the WebSocket handshake"
    assert silent.handshakes == 1 and elapsed < 2 * 2 + 1, elapsed
    assert len(outcome) == 1 and isinstance(outcome[0], AgentError), outcome
    assert str(outcome[0]) == f"cannot reach the SCMS at {silent.url}: no WebSocket handshake within 2 s"


def test_the_agent_command_takes_its_open_timeout(tmp_path: Path) -> None:
    """`cardsuite agent --open-timeout 1.5` against a server silent after TLS: told within that time, not 20 s."""
    make_ca_and_server(tmp_path / "silent", ["127.0.0.1"])
    silent = _SilentServer(tmp_path / "silent")
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    try:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "cardsuite", "agent", "--server", silent.url, "--ca",
                               str(silent.ca), "--open-timeout", "1.5", "--card", "sim", "install", "isoapplet"],
                              capture_output=True, text=True, timeout=60, env={**env, ENV_SCMS_TOKEN: "token"},
                              stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"Error: cannot reach the SCMS at {silent.url}: no WebSocket handshake within 1.5 s"], done.stderr
    assert silent.handshakes == 1
    assert elapsed < 20, elapsed  # the simulator's start included: the default alone would wait 20 s


def test_a_silent_server_is_passed_over_for_the_next(server: str, scms_folder: System,
                                                     card: SimulatorTransport) -> None:
    silent = _SilentServer(scms_folder.folder / "tls")  # the system's own certificate: only the answer is missing
    token = add_terminal(scms_folder, f"silent-{time.monotonic_ns()}")
    scms_folder.database().upsert_card(card_identity(card), "SECURED")
    shown: list[str] = []
    try:
        result = run_request([silent.url, server], scms_folder.ca, token, card, action="install", target="isoapplet",
                             progress=shown.append, open_timeout=2)
    finally:
        silent.close()
    assert result.outcome.startswith("install isoapplet"), result
    assert shown[0] == f"cannot reach the SCMS at {silent.url}: no WebSocket handshake within 2 s (before the " \
                       f"request was sent): again through {server}", shown


@pytest.fixture(scope="module")
def scp02_server(scms_folder: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A serve process of the same system (database, token) whose cards are opened with a two-key 3DES
    static key: the development keys of an SCP02 card, in the token only."""
    with scms_folder.kms() as kms:
        if kms.find(TRANSPORT_3DES) is None:
            kms.import_key(TRANSPORT_3DES, DEVELOPMENT_KEY, None, des=True)
    folder = tmp_path_factory.mktemp("scms-scp02")
    for shared in ("tls", "kms"):
        (folder / shared).symlink_to(scms_folder.folder / shared)
    config = (scms_folder.folder / "scms.toml").read_text()
    (folder / "scms.toml").write_text(config.replace('label = "transport"', f'label = "{TRANSPORT_3DES}"', 1))
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cardsuite", "scms", "serve", "--dir", str(folder),
                                "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for(process, port, scms_folder.ca)
    yield f"https://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def test_remote_post_issuance_over_scp02_with_keys_only_in_the_token(scp02_server: str, scms_folder: System,
                                                                      project: Project) -> None:
    card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp02"))
    card.connect()
    try:
        token = add_terminal(scms_folder, f"kiosk-{time.monotonic_ns()}")
        db = scms_folder.database()
        cin = card_identity(card)
        db.upsert_card(cin, "SECURED")
        result = run_request(scp02_server, scms_folder.ca, token, card, action="install", target="isoapplet")
        assert result.cin == cin and card.select(ISO_APPLET).sw == 0x9000
        assert db.request(result.request).state == "done"  # type: ignore[union-attr]
        audit = db.query("SELECT operation FROM scms_audit WHERE request_id = ? AND key_label = ?",
                         (result.request, TRANSPORT_3DES))
        assert ("mac",) in audit and ("cryptogram",) in audit
        commands = [c for _, c, _, _ in db.exchanges(result.request)]
        assert any(c.startswith("80 50") for c in commands) and any(c.startswith("84 E8") for c in commands)
    finally:
        card.disconnect()
