"""The portal's cookies: the login session, CSRF protection, the language, and a per-address login throttle.

- Session: the identity service's opaque token in an HttpOnly, SameSite=Lax cookie; on https it is
  `__Host-tt_session` and Secure (no Domain, Path=/), so no sibling host can set or read it.
- CSRF (every POST form): a signed double-submit token. A random nonce lives in its own HttpOnly cookie; the form
  carries HMAC(gateway key, nonce). A page on another site can neither read the cookie nor compute the HMAC, and a
  cookie it manages to plant is useless without the key. Cross-site POSTs are also refused by Origin when the
  browser sends one.
- Login throttle (LoginThrottle), at this gateway: at most LOGIN_LIMIT attempts per account and client address
  together per LOGIN_WINDOW, so that a 公民館's PC room or an event's Wi-Fi behind one address does not lock out
  the people who type their password right; and at most LOGIN_LIMIT × ADDRESS_FAILURES_FACTOR failed attempts per
  address, so that guessing across many accounts from one address is still slowed. The identity service also
  locks an account after repeated failures, wherever they come from.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

SESSION_COOKIE = "tt_session"
SECURE_SESSION_COOKIE = "__Host-tt_session"
CSRF_COOKIE = "tt_csrf"
LANG_COOKIE = "tt_lang"
SESSION_MAX_AGE = 14 * 24 * 3600
LOGIN_LIMIT = 10
LOGIN_WINDOW = 300.0
ADDRESS_FAILURES_FACTOR = 10  # failed logins an address may make per window: this many times LOGIN_LIMIT


def _secure(request: Request) -> bool:
    return request.app.state.settings.public_url.startswith("https://")


def _session_cookie(request: Request) -> str:
    return SECURE_SESSION_COOKIE if _secure(request) else SESSION_COOKIE


def session_token(request: Request) -> str | None:
    value = request.cookies.get(_session_cookie(request))
    return value if value and 16 <= len(value) <= 200 and value.replace("-", "").replace("_", "").isalnum() else None


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(_session_cookie(request), token, max_age=SESSION_MAX_AGE, path="/", httponly=True,
                        secure=_secure(request), samesite="lax")


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(_session_cookie(request), path="/", httponly=True, secure=_secure(request), samesite="lax")


# ---- CSRF -----------------------------------------------------------------------------------------------------


def _sign(request: Request, nonce: str) -> str:
    key: bytes = request.app.state.portal_key
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, response_cookies: dict[str, str]) -> str:
    """The token for a form on this page; makes the nonce cookie when there is none yet."""
    nonce = request.cookies.get(CSRF_COOKIE) or response_cookies.get(CSRF_COOKIE)
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        response_cookies[CSRF_COOKIE] = nonce
    return _sign(request, nonce)


def set_csrf_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(CSRF_COOKIE, nonce, path="/", httponly=True, secure=_secure(request), samesite="lax")


def csrf_ok(request: Request, submitted: str | None) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not submitted:
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        public = urlsplit(request.app.state.settings.public_url)
        here = urlsplit(str(request.base_url))
        if urlsplit(origin).netloc not in (public.netloc, here.netloc):
            return False
    return hmac.compare_digest(_sign(request, nonce), submitted)


# ---- language -------------------------------------------------------------------------------------------------


def lang(request: Request) -> str:
    value = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "ja"
    return value if value in ("ja", "en") else "ja"


# ---- login throttle -------------------------------------------------------------------------------------------


class SharedCounts:
    """The throttles' attempts in a SQLite file of the data dir, when the gateway runs several worker processes
    (`TOWNTIP_GATEWAY_WORKERS`): each worker would otherwise count alone and let through its own full quota. One
    short write transaction per attempt (logins, the contact form, card codes and other nodes' person queries are
    rare next to page views); the file holds addresses, account names and user ids for at most a day."""

    KEEP = 86_400.0  # rows older than this go at the next sweep

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")  # counts of attempts: a crash may forget some, no harm
            self._db.execute("CREATE TABLE IF NOT EXISTS attempts (name TEXT NOT NULL, key TEXT NOT NULL, "
                             "at REAL NOT NULL)")
            self._db.execute("CREATE INDEX IF NOT EXISTS attempts_by_key ON attempts (name, key, at)")
        self._added = 0

    def count(self, name: str, key: str, since: float) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM attempts WHERE name = ? AND key = ? AND at > ?",
                                   (name, key, since)).fetchone()
        return int(row[0])

    def add_below(self, name: str, key: str, limit: int, now: float, window: float) -> bool:
        """Count an attempt unless `limit` were counted within `window`: one transaction, so two workers never
        both take the last place."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (n,) = self._db.execute("SELECT count(*) FROM attempts WHERE name = ? AND key = ? AND at > ?",
                                        (name, key, now - window)).fetchone()
                if n >= limit:
                    return False
                self._db.execute("INSERT INTO attempts (name, key, at) VALUES (?, ?, ?)", (name, key, now))
                self._added += 1
                if self._added % 1000 == 0:
                    self._db.execute("DELETE FROM attempts WHERE at < ?", (now - self.KEEP,))
                return True
            finally:
                self._db.execute("COMMIT")


class Throttle:
    """Sliding window of attempts per key (client address): in this gateway process, or in `store` for all the
    gateway's workers (then under `name`, one window per throttle)."""

    def __init__(self, limit: int = LOGIN_LIMIT, window: float = LOGIN_WINDOW, *,
                 store: SharedCounts | None = None, name: str = "throttle") -> None:
        self.limit = limit
        self.window = window
        self.store = store
        self.name = name
        self.seen: dict[str, deque[float]] = defaultdict(deque)

    def full(self, key: str) -> bool:
        """Has `key` used up the window (without counting an attempt)?"""
        if self.store is not None:
            return self.store.count(self.name, key, time.time() - self.window) >= self.limit
        if key not in self.seen:
            return False
        q = self.seen[key]
        now = time.monotonic()
        while q and now - q[0] > self.window:
            q.popleft()
        return len(q) >= self.limit

    def allow(self, key: str) -> bool:
        if self.store is not None:
            return self.store.add_below(self.name, key, self.limit, time.time(), self.window)
        now = time.monotonic()
        q = self.seen[key]
        while q and now - q[0] > self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        if len(self.seen) > 10_000:  # forget idle addresses
            for k in [k for k, v in self.seen.items() if not v or now - v[-1] > self.window]:
                del self.seen[k]
        return True


class LoginThrottle:
    """The portal's login throttle: attempts per (address, account), failures per address (the module's note)."""

    def __init__(self, limit: int = LOGIN_LIMIT, window: float = LOGIN_WINDOW,
                 address_failures: int | None = None, *, store: SharedCounts | None = None) -> None:
        self.attempts = Throttle(limit, window, store=store, name="login")
        self.failures = Throttle(address_failures or limit * ADDRESS_FAILURES_FACTOR, window, store=store,
                                 name="login-failures")

    @staticmethod
    def key(address: str, login: str) -> str:
        return f"{address}\n{login.strip().lower()}"

    def allow(self, address: str, login: str) -> bool:
        """May this address try this account now? Counts the attempt when it may."""
        return not self.failures.full(address) and self.attempts.allow(self.key(address, login))

    def failed(self, address: str) -> None:
        """A wrong password (or an unknown account) from this address."""
        self.failures.allow(address)


def safe_next(value: str | None, default: str = "/me") -> str:
    """Only a path on this site: no scheme, no host, no `//` or backslash tricks (open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return default
    return value
