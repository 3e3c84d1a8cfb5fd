"""The console's gate: who gets in, which POSTs are honoured, what the browser may do.

- Access: with a console token (or NATS credentials of the console's user) every route but
  the login form and the static files needs either the session cookie a successful login
  sets or the secret in an `Authorization` header (`Bearer TOKEN`, or `Basic` user:password
  in NATS-user mode). Pages redirect to /login, everything else answers 401.
- CSRF: every request that is not GET/HEAD needs the form field `csrf_token` (or the header
  `X-CSRF-Token`) bound to the browser's session cookie, and an Origin, when sent, of this
  console. Requests authenticated by an Authorization header carry no ambient credential and
  are exempt. The token is an HMAC of the cookie under a per-process key: nothing is stored
  for anonymous visitors.
- Host: on a loopback address only loopback host names are answered (DNS rebinding).
- Headers on every answer: a CSP without inline scripts or styles, frame-ancestors 'none'
  and X-Frame-Options, nosniff, no referrer, no caching of pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pyjetstream.console.settings import ConsoleSettings, is_loopback

COOKIE = "pjs_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = ("/login", "/healthz")
MAX_SESSIONS = 1000
FAILED_LOGIN_DELAY = 0.5

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _key(name: str, kind: type) -> Any:
    """A typed request-storage key where aiohttp has them (3.12+), else the plain name."""
    maker = getattr(web, "RequestKey", None)
    return maker(name, kind) if maker is not None else name


SID: Any = _key("console_sid", str)
NEW_SID: Any = _key("console_new_sid", str)
HEADER_AUTH: Any = _key("console_header_auth", bool)


class Gate:
    """Sessions (logged-in cookies and their flash messages) and the checks above."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.key = secrets.token_bytes(32)
        self.sessions: OrderedDict[str, float] = OrderedDict()   # logged-in sid -> expiry
        self.flashes: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        self.forms: OrderedDict[str, dict[str, str]] = OrderedDict()

    # -- cookie and CSRF -------------------------------------------------------------------
    @staticmethod
    def sid(request: web.Request) -> str | None:
        value = request.cookies.get(COOKIE, "")
        return value if 20 <= len(value) <= 100 and value.replace("-", "").replace("_", "").isalnum() else None

    def ensure_sid(self, request: web.Request) -> str:
        """The browser's session id; a new one (set on the response) when it has none."""
        sid = request.get(SID) or self.sid(request)
        if sid is None:
            sid = secrets.token_urlsafe(32)
            request[NEW_SID] = sid
        request[SID] = sid
        return sid

    def csrf_token(self, request: web.Request) -> str:
        sid = self.ensure_sid(request)
        return hmac.new(self.key, sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: web.Request, given: str | None) -> bool:
        sid = self.sid(request)
        if sid is None or not given:
            return False
        expected = hmac.new(self.key, sid.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, given)

    # -- access ----------------------------------------------------------------------------
    def logged_in(self, request: web.Request) -> bool:
        sid = self.sid(request)
        expiry = self.sessions.get(sid) if sid else None
        if sid is None or expiry is None:
            return False
        if expiry < time.monotonic():
            self.sessions.pop(sid, None)
            return False
        return True

    def header_auth(self, request: web.Request) -> bool:
        """The secret in an Authorization header (API clients, curl)."""
        auth = self.settings.auth
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and auth.mode == "token" and auth.token:
            return hmac.compare_digest(value.encode(), auth.token.encode())
        if scheme.lower() == "basic" and auth.mode == "user":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self.credentials_ok(user, password)
        return False

    def credentials_ok(self, user: str, password: str) -> bool:
        auth = self.settings.auth
        if auth.mode == "user":
            ok_user = hmac.compare_digest(user.encode(), (auth.user or "").encode())
            ok_pass = hmac.compare_digest(password.encode(), (auth.password or "").encode())
            return ok_user and ok_pass
        return bool(auth.token) and hmac.compare_digest(password.encode(), (auth.token or "").encode())

    def login(self, request: web.Request, response: web.StreamResponse) -> None:
        """A new session id after a successful login (no fixation of the pre-login id)."""
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = time.monotonic() + self.settings.session_ttl
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        set_cookie(response, sid)
        request[SID] = sid
        request.pop(NEW_SID, None)

    def logout(self, request: web.Request) -> None:
        sid = self.sid(request)
        if sid:
            self.sessions.pop(sid, None)
            self.flashes.pop(sid, None)

    # -- flash messages (shown once, on the next page) -----------------------------------
    def flash(self, request: web.Request, kind: str, text: str) -> None:
        sid = self.ensure_sid(request)
        self.flashes.setdefault(sid, []).append((kind, text))
        self.flashes.move_to_end(sid)
        while len(self.flashes) > MAX_SESSIONS:
            self.flashes.popitem(last=False)

    def take_flashes(self, request: web.Request) -> list[tuple[str, str]]:
        sid = self.sid(request)
        return self.flashes.pop(sid, []) if sid else []

    def keep_form(self, request: web.Request, values: dict[str, str]) -> None:
        sid = self.ensure_sid(request)
        self.forms[sid] = values
        while len(self.forms) > MAX_SESSIONS:
            self.forms.popitem(last=False)

    def kept_form(self, request: web.Request) -> dict[str, str] | None:
        sid = self.sid(request)
        return self.forms.get(sid) if sid else None


def set_cookie(response: web.StreamResponse, sid: str) -> None:
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")


def host_allowed(settings: ConsoleSettings, request: web.Request) -> bool:
    """On a loopback listener, answer only requests addressed to a loopback name."""
    if not is_loopback(settings.host):
        return True
    host = request.host or ""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    return is_loopback(name)


def origin_ok(request: web.Request) -> bool:
    """A browser's POST from another site (or a sandboxed `null` origin) is refused even
    before its CSRF token is looked at; clients that send no Origin rely on the token."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin == f"{request.scheme}://{request.host}"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def wants_html(request: web.Request) -> bool:
    return request.method in SAFE_METHODS and "text/html" in request.headers.get("Accept", "")


def middlewares(gate: Gate) -> list[Any]:
    settings = gate.settings

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(settings, request):
            raise web.HTTPMisdirectedRequest(text="this console answers to loopback host names only\n")
        request[HEADER_AUTH] = False
        if settings.auth.required and not is_public(request.path):
            if gate.header_auth(request):
                request[HEADER_AUTH] = True
            elif not gate.logged_in(request):
                if wants_html(request):
                    target = request.rel_url.path_qs
                    raise web.HTTPSeeOther(location=f"/login?next={_quote(target)}")
                raise web.HTTPUnauthorized(text="login required\n",
                                           headers={"WWW-Authenticate": 'Bearer realm="pyjetstream console"'})
        if settings.read_only and request.method not in SAFE_METHODS and request.path not in ("/login", "/logout"):
            raise web.HTTPForbidden(text="this console is read-only\n")
        if request.method not in SAFE_METHODS and not request[HEADER_AUTH]:
            if not origin_ok(request):
                raise web.HTTPForbidden(text="cross-origin request refused\n")
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.content_type in ("application/x-www-form-urlencoded",
                                                          "multipart/form-data"):
                form = await request.post()
                value = form.get(CSRF_FIELD)
                given = value if isinstance(value, str) else None
            if not gate.csrf_ok(request, given):
                raise web.HTTPForbidden(text="missing or invalid CSRF token: reload the page and try again\n")
        return await handler(request)

    return [guard]


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every answer (errors and event streams included) and the new
    session cookie, when one was made for this request."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    new_sid = request.get(NEW_SID)
    if new_sid and COOKIE not in response.cookies:
        # aiohttp has turned `response.cookies` into headers before this hook runs.
        response.headers.add("Set-Cookie", f"{COOKIE}={new_sid}; HttpOnly; Path=/; SameSite=Strict")


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def safe_next(target: str | None) -> str:
    """Only a path of this console after login (no `//host` or `https://` redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
