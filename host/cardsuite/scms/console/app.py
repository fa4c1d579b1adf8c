"""The console's pages: a Starlette application mounted at /console beside the server's routes
(server.Server.app). Every page names the right it needs (auth.RIGHTS); a handler runs in a worker thread
with its own database connection; every POST carries the session's CSRF token; nothing from the KMS token
is ever read here, and exchanges are shown as recorded (masked).
"""

from __future__ import annotations

import calendar
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from cardsuite.deploy.inventory import Inventory
from cardsuite.project import Project
from cardsuite.scms import db as scms_db
from cardsuite.scms.ads import catalogue
from cardsuite.scms.console import auth, queries
from cardsuite.scms.console.charts import bar_chart
from cardsuite.scms.db import Database
from cardsuite.scms.system import ROLES, System

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "console"
MAX_FORM = 16 * 1024
# nothing but this origin's stylesheet and forms; no script at all (charts are inline SVG)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
NAV = (("statistics", "Statistics", "statistics"), ("cards", "Cards", "cards"), ("requests", "Requests", "requests"),
       ("applications", "Applications", "applications"), ("audit", "Audit log", "audit"),
       ("users", "Users", "users"), ("terminals", "Terminals", "terminals"))


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z" if at else ""


def _day(text: str) -> float | None:
    """A YYYY-MM-DD filter as the UNIX time of its UTC midnight; raises ValueError."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d"))) if text else None


class Refused(Exception):
    """A request the console answers with a status and one line (400, 403, 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Ctx:
    request: Request
    session: auth.Session
    form: dict[str, str]
    db: Database
    console: Console
    _inventory: Inventory | None = field(default=None, repr=False)

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            # read-only: a page never writes the inventory, nor runs its DDL (init and the ADS made it)
            self._inventory = Inventory(self.console.system.inventory_url, station="scms-console", read_only=True)
        return self._inventory

    def close(self) -> None:
        if self._inventory is not None:
            self._inventory.close()

    def arg(self, name: str) -> str:
        return self.request.query_params.get(name, "").strip()

    def render(self, template: str, code: int = 200, **values: object) -> Response:
        return self.console.render(template, code, session=self.session, path=self.request.url.path, **values)

    def back(self, path: str) -> Response:
        return RedirectResponse(self.console.prefix + path, status_code=303)


Handler = Callable[[Ctx], Response]


@dataclass
class Console:
    system: System
    project: Project
    prefix: str = "/console"

    def __post_init__(self) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                      undefined=jinja2.StrictUndefined)
        self.env.filters["when"] = _when
        self.env.globals.update(prefix=self.prefix, nav=NAV, urlencode=urlencode)

    def render(self, template: str, code: int = 200, **values: object) -> Response:
        values.setdefault("session", None)
        values.setdefault("path", "")
        return HTMLResponse(self.env.get_template(template).render(**values), status_code=code, headers=HEADERS)

    # -- the frame every page goes through: session, CSRF, right
    def page(self, right: str, handler: Handler) -> Callable:
        async def endpoint(request: Request) -> Response:
            form = await _form(request) if request.method == "POST" else {}
            return await run_in_threadpool(self._serve, request, form, right, handler)
        return endpoint

    def _serve(self, request: Request, form: dict[str, str] | None, right: str, handler: Handler) -> Response:
        db = self.system.database()
        ctx = None
        try:
            session = auth.session(db, request.cookies.get(auth.SESSION_COOKIE))
            if session is None:
                return RedirectResponse(f"{self.prefix}/signin?expired=1", status_code=303)
            ctx = Ctx(request, session, form or {}, db, self)
            try:
                if form is None:
                    raise Refused(400, "the form is not application/x-www-form-urlencoded or too large")
                if request.method == "POST" and not session.csrf_ok(ctx.form.get("csrf")):
                    raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")
                if not session.may(right):
                    raise Refused(403, f"the role {session.role} has no right to {right}")
                return handler(ctx)
            except Refused as exc:
                return ctx.render("error.html", exc.status, status=exc.status, message=str(exc))
        finally:
            if ctx is not None:
                ctx.close()
            db.close()

    # -- signing in and out (no session yet: a double-submit cookie refuses login CSRF)
    async def signin_form(self, request: Request) -> Response:
        token = auth.new_token()
        response = self.render("signin.html", csrf=token, error="", expired=bool(request.query_params.get("expired")))
        self._cookie(response, auth.SIGNIN_COOKIE, token, 600)
        return response

    async def signin(self, request: Request) -> Response:
        form = await _form(request) or {}
        if not auth.same_token(request.cookies.get(auth.SIGNIN_COOKIE, ""), form.get("csrf")):
            return self.render("error.html", 403, status=403, message="the sign-in form's CSRF token is wrong: "
                               "open the sign-in page again")
        name = form.get("name", "")
        session = await run_in_threadpool(self._sign_in, name, form.get("password", ""))
        if session is None:
            token = auth.new_token()
            response = self.render("signin.html", 401, csrf=token, error="unknown user or wrong password",
                                   expired=False)
            self._cookie(response, auth.SIGNIN_COOKIE, token, 600)
            return response
        response = RedirectResponse(f"{self.prefix}/", status_code=303)
        self._cookie(response, auth.SESSION_COOKIE, session, auth.ABSOLUTE_SECONDS)
        response.delete_cookie(auth.SIGNIN_COOKIE, path=self.prefix)
        return response

    def _sign_in(self, name: str, password: str) -> str | None:
        db = self.system.database()
        try:
            cookie = auth.sign_in(db, name, password)
            queries.record_action(db, name or "-", "console.signin", "ok" if cookie else "refused")
            return cookie
        finally:
            db.close()

    def _cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path=self.prefix, secure=True, httponly=True,
                            samesite="strict")

    def signout(self, ctx: Ctx) -> Response:
        auth.sign_out(ctx.db, ctx.request.cookies.get(auth.SESSION_COOKIE, ""))
        response = ctx.back("/signin")
        response.delete_cookie(auth.SESSION_COOKIE, path=self.prefix)
        return response

    def home(self, ctx: Ctx) -> Response:
        return ctx.back("/statistics")

    async def stylesheet(self, request: Request) -> Response:
        return Response((TEMPLATES / "console.css").read_text(), media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})

    # -- pages
    def statistics(self, ctx: Ctx) -> Response:
        stats = queries.statistics(ctx.db, ctx.inventory)
        charts = [bar_chart("Cards by state", stats.cards_by_state),
                  bar_chart(f"Issuance per day (requests done, last {queries.DAYS} days, UTC)", stats.issuance_per_day),
                  bar_chart("Applications installed (instances per AID)", stats.applications),
                  bar_chart(f"Failures by reason (last {queries.DAYS} days)", stats.failures),
                  bar_chart(f"Requests by action and state (last {queries.DAYS} days)", stats.requests)]
        return ctx.render("statistics.html", charts=charts, stats=stats)

    def cards(self, ctx: Ctx) -> Response:
        state = ctx.arg("state")
        if state and state not in scms_db.CARD_STATES:
            raise Refused(400, f"state {state!r}: valid are {', '.join(scms_db.CARD_STATES)}")
        page = queries.cards(ctx.db, state, ctx.arg("after"))
        return ctx.render("cards.html", page=page, state=state, states=scms_db.CARD_STATES)

    def card(self, ctx: Ctx) -> Response:
        cin = ctx.request.path_params["cin"]
        card = ctx.db.card(cin)
        if card is None:
            raise Refused(404, f"no card {cin!r} in the CMS")
        inventory, contents, history = queries.card_inventory(ctx.inventory, cin)
        return ctx.render("card.html", card=card, inventory=inventory, contents=contents, history=history,
                          requests=queries.card_requests(ctx.db, cin),
                          owed_pins=list(ctx.db.owed_pins(cin)))  # the instances only: a nonce is no page's

    def blacklist(self, ctx: Ctx) -> Response:
        cin = ctx.request.path_params["cin"]
        listed = ctx.form.get("blacklisted") == "1"
        if not ctx.db.set_blacklisted(cin, listed):
            raise Refused(404, f"no card {cin!r} in the CMS")
        queries.record_action(ctx.db, ctx.session.user, "console.blacklist" if listed else "console.unblacklist", cin)
        return ctx.back(f"/cards/{cin}")

    def requests(self, ctx: Ctx) -> Response:
        state = ctx.arg("state")
        if state and state not in scms_db.REQUEST_STATES:
            raise Refused(400, f"state {state!r}: valid are {', '.join(scms_db.REQUEST_STATES)}")
        page = queries.requests(ctx.db, state, _int(ctx.arg("before"), "before"))
        return ctx.render("requests.html", page=page, state=state, states=scms_db.REQUEST_STATES)

    def request_page(self, ctx: Ctx) -> Response:
        request_id = _int(ctx.request.path_params["id"], "request")
        record = ctx.db.request(request_id) if request_id is not None else None
        if record is None:
            raise Refused(404, f"no request {request_id}")
        return ctx.render("request.html", record=record, steps=ctx.db.steps(record.id),
                          exchanges=queries.request_exchanges(ctx.db, record.id),
                          audit=queries.audit(ctx.db, queries.AuditFilter(request_id=record.id), limit=200).rows)

    def applications(self, ctx: Ctx) -> Response:
        apps = [(name, _toml(path)) for name, path in catalogue(self.project).items()]
        cards = [(path.stem, _toml(path)) for path in sorted((self.project.root / "profiles" / "cards").glob("*.toml"))]
        return ctx.render("applications.html", apps=apps, profiles=cards)

    def audit(self, ctx: Ctx) -> Response:
        try:
            where = queries.AuditFilter(ctx.arg("actor"), ctx.arg("operation"), _int(ctx.arg("request"), "request"),
                                        _day(ctx.arg("since")),
                                        (_day(ctx.arg("until")) or 0) + 86400 if ctx.arg("until") else None)
        except ValueError:
            raise Refused(400, "since/until are dates, YYYY-MM-DD") from None
        page = queries.audit(ctx.db, where, _int(ctx.arg("before"), "before"))
        filters = {k: ctx.arg(k) for k in ("actor", "operation", "request", "since", "until") if ctx.arg(k)}
        return ctx.render("audit.html", page=page, filters=filters)

    def users(self, ctx: Ctx) -> Response:
        rows = ctx.db.query("SELECT name, role, disabled, created_at FROM scms_users ORDER BY name LIMIT 1000")
        return ctx.render("users.html", users=rows, roles=ROLES, error="")

    def add_user(self, ctx: Ctx) -> Response:
        name = ctx.form.get("name", "")
        try:
            auth.add_user(ctx.db, name, ctx.form.get("role", ""), ctx.form.get("password", ""))
        except ValueError as exc:
            rows = ctx.db.query("SELECT name, role, disabled, created_at FROM scms_users ORDER BY name LIMIT 1000")
            return ctx.render("users.html", 400, users=rows, roles=ROLES, error=str(exc))
        queries.record_action(ctx.db, ctx.session.user, "console.user.add", f"{name} {ctx.form.get('role')}")
        return ctx.back("/users")

    def change_user(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        role, disabled = ctx.form.get("role", ""), ctx.form.get("disabled") == "1"
        if role not in ROLES:
            raise Refused(400, f"role {role!r}: valid are {', '.join(ROLES)}")
        if name == ctx.session.user and (role != ctx.session.role or disabled):
            raise Refused(400, "an administrator does not change or disable their own account here")
        if ctx.db.execute("UPDATE scms_users SET role = ?, disabled = ? WHERE name = ?",
                          (role, int(disabled), name)) != 1:
            raise Refused(404, f"no user {name!r}")
        queries.record_action(ctx.db, ctx.session.user, "console.user.change",
                              f"{name} {role}{' disabled' if disabled else ''}")
        return ctx.back("/users")

    def terminals(self, ctx: Ctx) -> Response:
        rows = ctx.db.query("SELECT name, created_at, revoked_at FROM scms_terminals ORDER BY name LIMIT 1000")
        return ctx.render("terminals.html", terminals=rows)

    def revoke_terminal(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        if ctx.db.execute("UPDATE scms_terminals SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                          (time.time(), name)) != 1:
            raise Refused(404, f"no terminal {name!r} that is not revoked")
        queries.record_action(ctx.db, ctx.session.user, "console.terminal.revoke", name)
        return ctx.back("/terminals")

    def app(self) -> Starlette:
        p = self.page
        return Starlette(routes=[
            Route("/signin", self.signin_form, methods=["GET"]), Route("/signin", self.signin, methods=["POST"]),
            Route("/signout", p("statistics", self.signout), methods=["POST"]),
            Route("/console.css", self.stylesheet),
            Route("/", p("statistics", self.home)),
            Route("/statistics", p("statistics", self.statistics)),
            Route("/cards", p("cards", self.cards)),
            Route("/cards/{cin}", p("cards", self.card)),
            Route("/cards/{cin}/blacklist", p("cards.write", self.blacklist), methods=["POST"]),
            Route("/requests", p("requests", self.requests)),
            Route("/requests/{id}", p("requests", self.request_page)),
            Route("/applications", p("applications", self.applications)),
            Route("/audit", p("audit", self.audit)),
            Route("/users", p("users", self.users), methods=["GET"]),
            Route("/users", p("users", self.add_user), methods=["POST"]),
            Route("/users/{name}", p("users", self.change_user), methods=["POST"]),
            Route("/terminals", p("terminals", self.terminals)),
            Route("/terminals/{name}/revoke", p("terminals", self.revoke_terminal), methods=["POST"]),
        ])


async def _form(request: Request) -> dict[str, str] | None:
    """An urlencoded form's fields (the last value of each), None when it is not one or is too large."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _int(text: str, name: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise Refused(400, f"{name} {text!r}: a number") from None


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return {"error": f"unreadable: {exc}"}
