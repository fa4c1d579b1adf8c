"""Who is signed in to the console and what they may do: users' rights by role, sessions as database rows
(several ``serve`` processes share them; the cookie's value is stored only as its SHA-256), CSRF tokens
(one per session, compared in constant time), expiry (idle and absolute).

OWASP's Session Management and CSRF Prevention cheat sheets: random 256-bit ids, renewed at sign-in,
HttpOnly + Secure + SameSite=Strict cookies, a synchronizer token in every form, login CSRF refused with a
double-submit cookie on the sign-in form.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from cardsuite.scms.db import Database
from cardsuite.scms.system import ROLES, hash_password, token_hash, verify_password

SESSION_COOKIE = "cardsuite_session"
SIGNIN_COOKIE = "cardsuite_signin"
IDLE_SECONDS = 15 * 60  # a session unused this long is over
ABSOLUTE_SECONDS = 8 * 3600  # and any session after a working day
MIN_PASSWORD = 12  # as the first administrator's (system.init_system)

# what each role may do; a page or form names the right it needs, and a role without it gets 403
RIGHTS: dict[str, frozenset[str]] = {
    "administrator": frozenset({"statistics", "users", "terminals"}),
    "operator": frozenset({"statistics", "cards", "cards.write", "requests", "applications"}),
    "auditor": frozenset({"statistics", "cards", "requests", "applications", "audit"}),
}
assert set(RIGHTS) == set(ROLES)

# argon2 verification of a password no user has: a sign-in for an unknown name takes as long as a known one
_NO_USER_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    csrf: str

    def may(self, right: str) -> bool:
        return right in RIGHTS.get(self.role, frozenset())

    def csrf_ok(self, token: str | None) -> bool:
        return same_token(self.csrf, token)


def same_token(expected: str, given: str | None) -> bool:
    """In constant time (a CSRF token compared byte by byte would leak its prefix)."""
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


def sign_in(db: Database, name: str, password: str) -> str | None:
    """A new session's cookie value for a user whose password matches, else None. Expired rows go here."""
    rows = db.query("SELECT password_hash FROM scms_users WHERE name = ? AND disabled = 0", (name,))
    if not verify_password(rows[0][0] if rows else _NO_USER_HASH, password) or not rows:
        return None
    now = time.time()
    db.execute("DELETE FROM scms_sessions WHERE expires_at < ?", (now,))
    cookie = new_token()
    db.execute("INSERT INTO scms_sessions (id, user_name, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
               (token_hash(cookie), name, new_token(), now, now + IDLE_SECONDS))
    return cookie


def session(db: Database, cookie: str | None) -> Session | None:
    """The live session of a cookie (its user still enabled), its idle expiry moved on; None otherwise."""
    if not cookie:
        return None
    now = time.time()
    rows = db.query("SELECT u.name, u.role, s.csrf, s.created_at FROM scms_sessions s JOIN scms_users u "
                    "ON u.name = s.user_name WHERE s.id = ? AND s.expires_at > ? AND u.disabled = 0",
                    (token_hash(cookie), now))
    if not rows:
        return None
    name, role, csrf, created = rows[0]
    db.execute("UPDATE scms_sessions SET expires_at = ? WHERE id = ?",
               (min(now + IDLE_SECONDS, created + ABSOLUTE_SECONDS), token_hash(cookie)))
    return Session(name, role, csrf)


def sign_out(db: Database, cookie: str) -> None:
    db.execute("DELETE FROM scms_sessions WHERE id = ?", (token_hash(cookie),))


def add_user(db: Database, name: str, role: str, password: str) -> None:
    """Raises ValueError with the line to show."""
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("a user name is 1-64 letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise ValueError(f"role {role!r}: valid are {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    if db.query("SELECT name FROM scms_users WHERE name = ?", (name,)):
        raise ValueError(f"a user {name!r} exists already")
    db.execute("INSERT INTO scms_users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
               (name, hash_password(password), role, time.time()))
