"""Two `cardsuite scms serve` processes on one PostgreSQL database, made by `cardsuite scms init --db` in a
process of its own (its own SoftHSM2 token), each serving a terminal at the same time: both post-issuances
done, every record in the one database, no request claimed twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.deploy.inventory import Inventory, _content_rows
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import development_keys
from cardsuite.project import Project
from cardsuite.scms.agent import AgentResult, run_request
from cardsuite.scms.db import Database
from cardsuite.settings import ENV_SCMS_PASSWORD
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.wallet.card import WALLET_AID, WalletClient
from support.threads import at_once

from tests.scms.conftest import ADMIN_PASSWORD, card_identity
from tests.scms.test_remote import ISO_APPLET, _free_port, _wait_for
from tests.support.cardlink import CardLink


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "cardsuite", *args], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Path, list[str], list[subprocess.Popen]]]:
    folder = tmp_path / "scms"
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    db = Database(postgres_url)
    db.create()
    with db.transaction() as cur:  # the server outlives a test; init adds its administrator again
        for table in ("scms_users", "scms_terminals", "scms_requests", "scms_cards"):
            cur.execute(f"DELETE FROM {table}")
    _cli("scms", "init", "--dir", str(folder), "--db", postgres_url, "--development-transport-keys",
         env={**env, ENV_SCMS_PASSWORD: ADMIN_PASSWORD})
    servers, processes = [], []
    for _ in range(2):
        port = _free_port()
        processes.append(subprocess.Popen([sys.executable, "-m", "cardsuite", "scms", "serve", "--dir", str(folder),
                                           "--listen", f"127.0.0.1:{port}"], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        servers.append(f"https://127.0.0.1:{port}")
        _wait_for(processes[-1], port, folder / "tls" / "ca.pem")
    yield folder, servers, processes
    for process in processes:
        process.terminate()
        process.wait(10)


def test_two_servers_one_database(fleet: tuple[Path, list[str], list[subprocess.Popen]], postgres_url: str,
                                  project: Project) -> None:
    folder, servers, _ = fleet
    token = _cli("scms", "terminal", "add", "--dir", str(folder), "kiosk").splitlines()[-1]
    db = Database(postgres_url)
    cards = [SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03")) for _ in servers]
    results: list[AgentResult] = []
    errors: list[BaseException] = []
    for card in cards:
        card.connect()
        db.upsert_card(card_identity(card), "SECURED")

    def agent(server: str, card: SimulatorTransport) -> None:
        try:
            results.append(run_request(server, folder / "tls" / "ca.pem", token, card, action="install",
                                       target="isoapplet"))
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)

    at_once(agent, zip(servers, cards, strict=True), timeout=300)
    assert not errors, errors
    claimants = {db.request(r.request).claimed_by for r in results}  # type: ignore[union-attr]
    assert len(results) == 2 and len(claimants) == 2  # one request on each server process
    rows = db.query("SELECT state, COUNT(*) FROM scms_requests GROUP BY state")
    assert dict(rows) == {"done": 2}
    assert db.cards_by_state() == {"SECURED": 2}
    for card in cards:
        card.disconnect()


def _kiosk_and_card(folder: Path, postgres_url: str, project: Project,
                    state: str) -> tuple[str, Database, SimulatorTransport, str]:
    """A new terminal's token, the database, and an empty simulated card known to the CMS in ``state``."""
    token = _cli("scms", "terminal", "add", "--dir", str(folder), "kiosk").splitlines()[-1]
    db = Database(postgres_url)
    card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
    card.connect()
    cin = card_identity(card)
    db.upsert_card(cin, state)
    return token, db, card, cin


class _KillsServerMidLoad(CardLink):
    """The card link of an agent whose server is killed (SIGKILL) at the third LOAD block of the second
    package: the card answers that block, the run's answers find the link down."""

    def __init__(self, card: SimulatorTransport, server: subprocess.Popen, db: Database, cin: str) -> None:
        super().__init__(card)
        self._server = server
        self._db, self._cin = db, cin
        self._install_for_load = self._loads = 0
        self.first_package_blocks = 0  # LOAD blocks of the first package, all answered before the kill

    def transmit_raw(self, command: bytes) -> bytes:
        if command[1] == 0xE6 and command[2] == 0x02:  # INSTALL [for load]
            self._install_for_load += 1
        if command[1] == 0xE8 and self._install_for_load == 1:
            self.first_package_blocks += 1
        if command[1] == 0xE8 and self._install_for_load == 2:
            self._loads += 1
            if self._loads == 3:
                self._authentication_recorded()
                self._server.kill()
                self._server.wait(30)
        return self._card.transmit_raw(command)

    def _authentication_recorded(self) -> None:
        """The ADS writes the steps it noted before the run of loads goes out, committed while the run is
        in flight: waited for here, so that the kill comes after that commit, as it does on any machine not
        slowed to a crawl (the run's card time is milliseconds, the commit under one)."""
        for _ in range(200):  # the card's running request: the one that holds it busy
            if self._db.query("SELECT COUNT(*) FROM scms_steps s JOIN scms_cards c ON c.busy_request = s.request_id "
                              "WHERE c.cin = ? AND s.name = 'mutual authentication'", (self._cin,))[0][0]:
                return
            time.sleep(0.05)
        raise AssertionError("the ADS did not record the secure channel before the run of loads")


def test_a_server_killed_mid_post_issuance(fleet: tuple[Path, list[str], list[subprocess.Popen]],
                                           postgres_url: str, project: Project) -> None:
    """The agent goes on through the other server: the dead server's request is reaped (failed, with the
    reason), the new one finishes the card from where it was, and the records match the card."""
    folder, servers, processes = fleet
    token, db, card, cin = _kiosk_and_card(folder, postgres_url, project, "SECURED")
    shown: list[str] = []
    killing = _KillsServerMidLoad(card, processes[0], db, cin)
    result = run_request(servers, folder / "tls" / "ca.pem", token, killing,  # type: ignore[arg-type]
                         action="install", target="isoapplet", progress=shown.append)
    assert result.outcome.startswith("install isoapplet") and any("again through" in line for line in shown)
    rows = db.query("SELECT id, state, reason, claimed_by FROM scms_requests WHERE cin = ? ORDER BY id", (cin,))
    assert [row[1] for row in rows] == ["failed", "done"], rows
    assert "went away" in rows[0][2] and rows[0][3] != rows[1][3]
    # the killed server's finished steps kept their exchanges (masked) and key uses: written with each step.
    # The loads and the install went in one run (a relay), whose answers never came back: none is recorded
    # done though the card holds the first package whole (records behind the card, never ahead of it)
    dead = rows[0][0]
    steps = {(name, outcome) for _, name, outcome, _ in db.steps(dead)}
    assert ("mutual authentication", "ok") in steps and not any(name.startswith("load") for name, _ in steps)
    exchanges = db.exchanges(dead)
    assert [seq for seq, _, _, _ in exchanges] == list(range(1, len(exchanges) + 1))
    assert killing.first_package_blocks > 2 and not [c for _, c, _, _ in exchanges if c[3:5] == "E8"]
    initialize = [(c, r) for _, c, r, _ in exchanges if c.startswith("80 50")]
    assert initialize and all("masked" in c and "masked" in r for c, r in initialize)  # challenge, cryptogram
    assert db.query("SELECT COUNT(*) FROM scms_audit WHERE request_id = ?", (dead,))[0][0] > 0
    steps = {(name, outcome) for _, name, outcome, _ in db.steps(rows[1][0])}
    # the agent ran the whole run on the card (the server died while it did): the next request finds every
    # load and install done, and records them as there
    assert {("load isofs", "skipped"), ("load isoapplet", "skipped"), ("install isoapplet", "skipped")} <= steps, steps
    assert card.select(ISO_APPLET).sw == 0x9000
    gp = GlobalPlatform(card)
    gp.select()
    gp.open_secure_channel(development_keys().keys)
    with Inventory(postgres_url, station="test") as inventory:  # the records are the card's contents
        recorded = {(c.aid, c.kind, c.state) for c in inventory.contents(cin)}
    assert recorded == {row[:3] for row in _content_rows(gp.registry())}
    card.disconnect()


def test_a_server_killed_at_the_cardholder_pin_step(fleet: tuple[Path, list[str], list[subprocess.Popen]],
                                                    postgres_url: str, project: Project) -> None:
    """Killed while the cardholder chooses the PIN: the terminal sets it on the card, its answer finds the link
    down, and the request goes to the other server, which finds the card owing the PIN step and the one-time
    PIN refused (63C2): the PIN the cardholder chose stands, nothing is owed any more."""
    folder, servers, processes = fleet
    token, db, card, cin = _kiosk_and_card(folder, postgres_url, project, "OP_READY")
    shown: list[str] = []

    def cardholder(puk: str) -> str:
        shown.append(puk)
        if len(shown) == 1:
            processes[0].kill()
            processes[0].wait(30)
        return "2580"

    result = run_request(servers, folder / "tls" / "ca.pem", token, card, action="install", target="wallet-sim",
                         ask_pin=cardholder)
    rows = db.query("SELECT id, state FROM scms_requests WHERE cin = ? ORDER BY id", (cin,))
    assert [state for _, state in rows] == ["failed", "done"] and result.request == rows[1][0], rows
    steps = {name: (outcome, detail) for _, name, outcome, detail in db.steps(rows[1][0])}
    assert steps["personalise wallet"][0] == "skipped", steps  # personalised once, by the killed server
    assert steps["cardholder PIN"] == ("ok", "chosen before: the card refuses the one-time PIN (63C2)"), steps
    assert len(shown) == 2 and shown[0] == shown[1] and db.owed_pins(cin) == {}
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin("2580")
    card.disconnect()
