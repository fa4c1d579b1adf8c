"""The console's rules through the server's whole ASGI application (Starlette's TestClient over https://, so
that the Secure cookies travel): sign-in, CSRF refused, sessions that expire, 403 for every right a role
lacks, keyset pagination, the audit log's filters, statistics charts, every query on an index, and no
secret in any page after a real post-issuance of the wallet."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.deploy.inventory import Inventory
from cardsuite.project import Project
from cardsuite.scms.ads import PostIssuance
from cardsuite.scms.agent import set_cardholder_pin
from cardsuite.scms.console import auth, queries
from cardsuite.scms.db import Database
from cardsuite.scms.server import Server
from cardsuite.scms.system import System, add_terminal
from cardsuite.sim.bridge import DEVELOPMENT_KEY
from cardsuite.sim.inprocess import SimulatorTransport
from starlette.testclient import TestClient

from tests.scms.conftest import card_identity
from tests.scms.test_db import url  # noqa: F401 - SQLite and the session's PostgreSQL, as a fixture

PASSWORD = "a long enough password"
ROLE_USERS = {"administrator": "ada", "operator": "otto", "auditor": "aud"}
# every page and form, the right it needs (auth.RIGHTS)
PAGES = {"/console/statistics": "statistics", "/console/cards": "cards", "/console/requests": "requests",
         "/console/applications": "applications", "/console/audit": "audit", "/console/users": "users",
         "/console/terminals": "terminals"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def db(scms: System) -> Iterator[Database]:
    Inventory(scms.inventory_url, station="scms-init").close()  # made by scms init (the console only reads it)
    database = scms.database()
    for role, name in ROLE_USERS.items():
        auth.add_user(database, name, role, PASSWORD)
    yield database
    database.close()


@pytest.fixture
def client(scms: System, project: Project, db: Database) -> Iterator[TestClient]:
    with TestClient(Server(scms, project).app(), base_url="https://testserver", follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Signs in; the page's CSRF token."""
    form = client.get("/console/signin")
    response = client.post("/console/signin", data={"csrf": CSRF.search(form.text)[1], "name": name,
                                                     "password": password})
    assert response.status_code == 303, response.text
    return CSRF.search(client.get("/console/statistics").text)[1]


def test_sign_in_with_the_password_then_out(client: TestClient, db: Database) -> None:
    assert client.get("/console/cards").headers["location"] == "/console/signin?expired=1"
    form = client.get("/console/signin")
    refused = client.post("/console/signin", data={"csrf": CSRF.search(form.text)[1], "name": "otto",
                                                   "password": "not the password"})
    assert refused.status_code == 401 and auth.SESSION_COOKIE not in client.cookies
    csrf = sign_in(client, "otto")
    cookie = client.cookies[auth.SESSION_COOKIE]
    stored = db.query("SELECT id FROM scms_sessions")
    assert [row[0] for row in stored] != [cookie] and len(stored) == 1  # the id kept only as its hash
    assert client.get("/console/cards").status_code == 200
    assert client.post("/console/signout", data={"csrf": csrf}).status_code == 303
    assert client.get("/console/cards").status_code == 303
    assert db.query("SELECT COUNT(*) FROM scms_sessions")[0][0] == 0
    signins = db.query("SELECT actor, detail FROM scms_audit WHERE operation = 'console.signin' ORDER BY id")
    assert signins == [("console:otto", "refused"), ("console:otto", "ok")]


def test_a_disabled_user_cannot_sign_in_and_loses_the_session(client: TestClient, db: Database) -> None:
    sign_in(client, "aud")
    db.execute("UPDATE scms_users SET disabled = 1 WHERE name = 'aud'")
    assert client.get("/console/audit").status_code == 303
    form = client.get("/console/signin")
    assert client.post("/console/signin", data={"csrf": CSRF.search(form.text)[1], "name": "aud",
                                                "password": PASSWORD}).status_code == 401


def test_forms_without_the_sessions_csrf_token_are_refused(client: TestClient, db: Database) -> None:
    db.upsert_card("CIN-1", "SECURED")
    form = client.get("/console/signin")
    token = CSRF.search(form.text)[1]
    client.cookies.delete(auth.SIGNIN_COOKIE, path="/console")  # login CSRF: a form without the cookie
    assert client.post("/console/signin", data={"csrf": token, "name": "otto",
                                                "password": PASSWORD}).status_code == 403
    csrf = sign_in(client, "otto")
    wrong = ("y" if csrf[0] == "x" else "x") + csrf[1:]  # one character off (a random token may begin with x)
    for data in ({"blacklisted": "1"}, {"blacklisted": "1", "csrf": wrong}, {"blacklisted": "1", "csrf": ""}):
        response = client.post("/console/cards/CIN-1/blacklist", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert db.card("CIN-1").blacklisted is False  # type: ignore[union-attr]
    assert client.post("/console/cards/CIN-1/blacklist", data={"blacklisted": "1", "csrf": csrf}).status_code == 303
    assert db.card("CIN-1").blacklisted is True  # type: ignore[union-attr]
    assert client.post("/console/cards/CIN-1/blacklist", content=b'{"csrf": "%s"}' % csrf.encode(),
                       headers={"content-type": "application/json"}).status_code == 400
    assert db.query("SELECT actor, operation, detail FROM scms_audit WHERE operation LIKE 'console.%black%'") == \
        [("console:otto", "console.blacklist", "CIN-1")]


def test_sessions_expire_when_idle_and_after_the_absolute_limit(client: TestClient, db: Database) -> None:
    sign_in(client, "otto")
    assert client.get("/console/cards").status_code == 200
    (expires,), = db.query("SELECT expires_at FROM scms_sessions")
    assert time.time() + auth.IDLE_SECONDS - 60 < expires <= time.time() + auth.IDLE_SECONDS
    db.execute("UPDATE scms_sessions SET expires_at = ?", (time.time() - 1,))
    response = client.get("/console/cards")
    assert response.status_code == 303 and response.headers["location"].endswith("/signin?expired=1")
    assert "session has ended" in client.get(response.headers["location"]).text
    sign_in(client, "otto")
    db.execute("UPDATE scms_sessions SET created_at = ?", (time.time() - auth.ABSOLUTE_SECONDS + 1,))
    assert client.get("/console/cards").status_code == 200  # its last request: expiry now at the absolute limit
    time.sleep(1.1)
    assert client.get("/console/cards").status_code == 303


@pytest.mark.parametrize("role", sorted(auth.RIGHTS))
def test_each_role_gets_403_for_every_right_it_lacks(client: TestClient, db: Database, role: str) -> None:
    db.upsert_card("CIN-1", "SECURED")
    db.execute("INSERT INTO scms_terminals (name, token_hash, created_at) VALUES ('kiosk', 'h', 0)")
    csrf = sign_in(client, ROLE_USERS[role])
    rights = auth.RIGHTS[role]
    for path, right in PAGES.items():
        response = client.get(path)
        assert response.status_code == (200 if right in rights else 403), (role, path)
        if response.status_code == 403:
            assert f"no right to {right}" in response.text
    forms = {"/console/cards/CIN-1/blacklist": ("cards.write", {"blacklisted": "1"}),
             "/console/users": ("users", {"name": "newone", "role": "auditor", "password": PASSWORD}),
             f"/console/users/{ROLE_USERS['auditor']}": ("users", {"role": "auditor", "disabled": "1"}),
             "/console/terminals/kiosk/revoke": ("terminals", {})}
    for path, (right, data) in forms.items():
        expected = 303 if right in rights else 403
        assert client.post(path, data={**data, "csrf": csrf}).status_code == expected, (role, path)
    assert db.card("CIN-1").blacklisted == ("cards.write" in rights)  # type: ignore[union-attr]
    assert bool(db.query("SELECT 1 FROM scms_users WHERE name = 'newone'")) == ("users" in rights)
    page = client.get("/console/statistics").text  # the menu offers only what the role may open
    assert all((f'href="{path}"' in page) == (right in rights) for path, right in PAGES.items())


def test_an_administrator_adds_users_and_changes_roles(client: TestClient, db: Database) -> None:
    csrf = sign_in(client, "ada")
    short = client.post("/console/users", data={"csrf": csrf, "name": "x", "role": "operator", "password": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    assert client.post("/console/users", data={"csrf": csrf, "name": "bob", "role": "operator",
                                               "password": PASSWORD}).status_code == 303
    assert client.post("/console/users/bob", data={"csrf": csrf, "role": "auditor"}).status_code == 303
    assert db.query("SELECT role, disabled FROM scms_users WHERE name = 'bob'") == [("auditor", 0)]
    assert client.post("/console/users/ada", data={"csrf": csrf, "role": "operator"}).status_code == 400
    hashes = [row[0] for row in db.query("SELECT password_hash FROM scms_users")]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(h in client.get("/console/users").text for h in hashes)


def _links(html: str, label: str) -> str | None:
    match = re.search(rf'<a href="(\?[^"]+)">{label}</a>', html)
    return match[1].replace("&amp;", "&") if match else None


def test_a_card_owing_a_pin_step_says_so_without_its_nonce(client: TestClient, db: Database) -> None:
    db.upsert_card("CIN-OWES", "SECURED")
    sign_in(client, "otto")
    assert "Cardholder PIN owed" not in client.get("/console/cards/CIN-OWES").text
    nonce = "5EC12E7" * 4 + "ABCD"
    db.owe_pin("CIN-OWES", "F0636172641001", nonce, 7)
    page = client.get("/console/cards/CIN-OWES").text
    assert "Cardholder PIN owed" in page and "F0636172641001" in page
    assert nonce not in page and nonce.lower() not in page


def test_cards_are_listed_by_state_a_page_at_a_time(client: TestClient, db: Database) -> None:
    with db.transaction() as cur:
        for i in range(173):
            cur.execute("INSERT INTO scms_cards (cin, state, updated_at) VALUES (?, ?, 0)",
                        (f"CIN-{i:04}", "SECURED" if i % 3 else "OP_READY"))
    sign_in(client, "otto")
    seen: list[str] = []
    link: str | None = "/console/cards?state=SECURED"
    pages = 0
    while link:
        html = client.get(link).text
        rows = re.findall(r'<td><a href="/console/cards/(CIN-\d+)">', html)
        assert 0 < len(rows) <= queries.PAGE
        seen += rows
        pages += 1
        more = _links(html, "Next cards")
        link = f"/console/cards{more}" if more else None
    expected = [f"CIN-{i:04}" for i in range(173) if i % 3]
    assert seen == expected and pages == 3  # 115 cards: 50, 50, 15, in CIN order, none twice
    assert client.get("/console/cards?state=NOPE").status_code == 400


def test_the_audit_log_filters_and_pages(client: TestClient, db: Database) -> None:
    day = 86400.0
    rows = [(1_700_000_000 + i * day / 4, "ads:7" if i % 2 else "ads:8", "derive" if i % 3 else "cmac", "master",
             7 if i % 2 else 8, f"entry {i}") for i in range(130)]
    db.record_audit(rows)
    sign_in(client, "aud")

    def details(query: str) -> list[str]:
        found: list[str] = []
        link: str | None = f"/console/audit?{query}"
        while link:
            html = client.get(link).text
            found += re.findall(r"<td>(entry \d+)</td>", html)
            more = _links(html, "Older entries")
            link = f"/console/audit{more}" if more else None
        return found

    everything = details("actor=ads:7")
    assert everything == [f"entry {i}" for i in reversed(range(130)) if i % 2]  # 65 rows over two pages
    assert details("operation=cmac&request=8") == [f"entry {i}" for i in reversed(range(130))
                                                   if i % 2 == 0 and i % 3 == 0]
    first = time.strftime("%Y-%m-%d", time.gmtime(1_700_000_000 + 4 * day))
    assert details(f"since={first}&until={first}") == [f"entry {i}" for i in reversed(range(130))
                                                       if time.strftime("%Y-%m-%d", time.gmtime(rows[i][0])) == first]
    assert client.get("/console/audit?since=yesterday").status_code == 400


def test_statistics_are_drawn_as_inline_svg(client: TestClient, db: Database, scms: System) -> None:
    for i, state in enumerate(["SECURED"] * 3 + ["OP_READY"]):
        db.upsert_card(f"CIN-{i}", state)
    unknown = "card {} is unknown to the CMS: import its order first"  # the ADS's refusal, a card each
    for state, reason in (("done", None), ("done", None), ("failed", unknown.format("cplc:0008")),
                          ("failed", unknown.format("cplc:0009")), ("failed", "cryptogram")):
        request = db.new_request("kiosk", "install", "isoapplet")
        db.finish_request(request, state, reason)
    inventory = Inventory(scms.inventory_url, station="test")
    with inventory.transaction() as cur:
        for card in ("A", "B"):
            cur.execute("INSERT INTO inv_contents (card, aid, kind, state, updated_at) VALUES (?, 'A0000001', "
                        "'APP', 'SELECTABLE', 0)", (card,))
    inventory.close()
    stats = queries.statistics(db, Inventory(scms.inventory_url, station="test"))
    assert stats.cards_by_state == [("OP_READY", 1), ("SECURED", 3)]
    assert stats.issuance_per_day[-1][1] == 2 and sum(n for _, n in stats.issuance_per_day) == 2
    assert stats.failures == [("unknown card", 2), ("cryptogram", 1)]  # by kind: no card named
    assert stats.requests == [("install done", 2), ("install failed", 3)]
    assert stats.applications == [("A0000001", 2)]
    sign_in(client, "ada")
    response = client.get("/console/statistics")
    html = response.text
    assert html.count("<svg") == 5 and "<script" not in html
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script
    assert re.search(r"<title>SECURED: 3</title>", html) and re.search(r"<title>A0000001: 2</title>", html)
    assert "<title>unknown card: 2</title>" in html and "cplc:0008" not in html


def test_every_console_query_is_on_an_index(scms: System, db: Database) -> None:
    """SQLite's plan for each statement the pages run: a SEARCH or a SCAN of an index, never of a table."""
    statements: list[str] = []
    db._db.set_trace_callback(statements.append)
    inventory = Inventory(scms.inventory_url, station="test")
    inventory._db.set_trace_callback(statements.append)
    queries.cards(db, "SECURED", "CIN-1")
    queries.cards(db)
    queries.card_requests(db, "CIN-1")
    queries.card_inventory(inventory, "CIN-1")
    queries.requests(db, "failed", 10)
    queries.requests(db)
    queries.request_exchanges(db, 3)
    db.steps(3)
    for where in (queries.AuditFilter(), queries.AuditFilter(actor="ads:1"), queries.AuditFilter(operation="cmac"),
                  queries.AuditFilter(request_id=3), queries.AuditFilter(since=0.0, until=1e9)):
        queries.audit(db, where, 100)
    queries.statistics(db, inventory)
    auth.session(db, "a cookie")
    db._db.set_trace_callback(None)
    inventory._db.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 18
    plans = sqlite3.connect(db.url[len("sqlite:///"):])
    plans.execute(f"ATTACH DATABASE '{inventory.url[len('sqlite:///'):]}' AS inv")
    inventory.close()
    for sql in selects:
        plan = [detail for *_, detail in plans.execute("EXPLAIN QUERY PLAN " + sql)]
        assert not any(re.fullmatch(r"SCAN \w+", d) for d in plan), f"{sql}: {plan}"
        if re.search(r"\b(?!id\b)\w+ (=|>=) ", sql.split("WHERE", 1)[-1]) and "WHERE" in sql:
            # a filter on a column: an index finds the rows (not a walk along the ids testing each)
            assert any("INDEX" in d or "(rowid=?)" in d for d in plan), f"{sql}: {plan}"


def test_no_secret_in_any_page_after_a_wallet_post_issuance(client: TestClient, db: Database, scms: System,
                                                            project: Project, card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db.upsert_card(cin, "OP_READY")
    request = db.new_request("kiosk-1", "install", "wallet-sim")
    secrets: list[str] = ["86429731"]  # the cardholder's PIN, chosen at the terminal

    def at_the_terminal(aid: bytes, initial_pin: str, puk: str) -> str:
        secrets.extend([initial_pin, puk])
        set_cardholder_pin(card, aid, initial_pin, lambda _puk: secrets[0], puk)
        return "chosen at the test's terminal"

    PostIssuance(scms, db, project, request, cardholder_pin=at_the_terminal).run(card)
    assert len(db.exchanges(request)) > 20 and db.query("SELECT COUNT(*) FROM scms_audit")[0][0] > 0
    secrets += [add_terminal(scms, "kiosk-2"), scms.pin_file.read_text().strip(), PASSWORD]
    secrets += [row[0] for row in db.query("SELECT password_hash FROM scms_users")]
    key = DEVELOPMENT_KEY.hex().upper()
    pages: dict[str, str] = {}
    for name in ROLE_USERS.values():
        client.cookies.clear()
        sign_in(client, name)
        secrets.append(client.cookies[auth.SESSION_COOKIE])
        for path in [*PAGES, f"/console/cards/{cin}", f"/console/requests/{request}",
                     f"/console/audit?request={request}"]:
            pages[f"{name} {path}"] = client.get(path).text
    assert "personalise wallet" in pages[f"otto /console/requests/{request}"]
    assert "80 50" in pages[f"otto /console/requests/{request}"]  # the exchanges are there, masked
    for where, html in pages.items():
        flat = re.sub(r"[\s:]", "", html).upper()
        for secret in secrets:
            assert secret.encode().hex().upper() not in flat, where
            assert len(secret) < 6 or secret not in html, where  # a short one-time PIN could be any number
        assert key not in flat and key[:16] not in flat, where  # the card's (development) keys
        assert not re.search(r"940001\d{6,}", re.sub(r"\s", "", html)), where  # a whole card number of the IIN


def test_the_pages_queries_on_sqlite_and_postgresql(url: str, tmp_path: Path) -> None:  # noqa: F811
    """Issuance counted per UTC day on both databases (PostgreSQL's CAST rounds: the day is FLOORed), and a
    keyset page on each."""
    db = Database(url)
    db.create()
    inventory = Inventory(url if url.startswith("postgres") else f"sqlite:///{tmp_path / 'inventory.db'}",
                          station="test")
    midnight = (time.time() // 86400) * 86400
    for at in (midnight + 1, midnight + 86399 - 86400, midnight - 43200, midnight - 86400 * 40):
        request = db.new_request("kiosk", "install", "isoapplet")
        db.execute("UPDATE scms_requests SET state = 'done', updated_at = ?, created_at = ? WHERE id = ?",
                   (at, at, request))
    for i in range(7):
        db.upsert_card(f"PG-{i}", "SECURED")
    stats = queries.statistics(db, inventory, now=midnight + 3600)
    assert [n for _, n in stats.issuance_per_day[-2:]] == [2, 1]
    assert sum(n for _, n in stats.issuance_per_day) == 3 and stats.requests == [("install done", 3)]
    first = queries.cards(db, "SECURED", limit=5)
    assert len(first.rows) == 5 and first.next == "PG-4"
    assert [row[0] for row in queries.cards(db, "SECURED", first.next, limit=5).rows] == ["PG-5", "PG-6"]
    inventory.close()
    db.close()
