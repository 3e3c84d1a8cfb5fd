"""The console's routes: pages (plain HTML tables and forms), actions (POST), live updates.

Every page is a view (a function from the sampler's snapshot and the URL to a template
context) rendered by Jinja2 with autoescaping; a page's live part is a separate template that
`/live?src=PAGE` renders again on every sample and sends as a server-sent event when it
changed (console.js swaps it in; with JavaScript off a <noscript> refresh does the same).
Actions change state only on POST, behind the CSRF check of `security`, and redirect back
with a flash message. Nothing here speaks NATS directly: `data` does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import nats.errors
from aiohttp import web
from markupsafe import Markup
from yarl import URL

from pyjetstream.cli import common as c
from pyjetstream.console import charts, data
from pyjetstream.console import security as sec
from pyjetstream.console.sampler import Sampler, Snapshot, SubscriptionRow
from pyjetstream.console.settings import ConsoleSettings
from pyjetstream.eventing import dispatcher as d
from pyjetstream.httpd import add_fallback, expect_handler

HERE = Path(__file__).resolve().parent
NAV = (("overview", "Overview", "/"), ("streams", "Streams", "/streams"),
       ("subscriptions", "Subscriptions", "/subscriptions"), ("dead_letters", "Dead letters", "/dead-letters"),
       ("publish", "Publish", "/publish"))
KEEPALIVE = 15.0
NATS_ERRORS = (c.CLIError, nats.errors.Error, OSError, TimeoutError)


@dataclass
class DeadLetterCache:
    """The dead letters as last listed, listed again only when the dead-letter stream changed."""

    key: tuple[Any, ...] | None = None
    letters: list[data.Message] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class ConsoleState:
    settings: ConsoleSettings
    nc: Any
    sampler: Sampler
    gate: sec.Gate
    live_streams: int = 0
    dead: DeadLetterCache = field(default_factory=DeadLetterCache)

    @property
    def snap(self) -> Snapshot:
        return self.sampler.snapshot

    async def dead_letters(self) -> list[data.Message]:
        cfg = self.settings.eventing
        info = self.snap.stream(cfg.dead_letter.stream)
        if info is None:
            return []
        st = info.get("state") or {}
        key = (st.get("first_seq"), st.get("last_seq"), st.get("messages"), tuple(sorted(self.snap.dead_letters)))
        async with self.dead.lock:
            if key != self.dead.key:
                self.dead.letters = await data.list_dead_letters(self.nc, cfg, list(self.snap.dead_letters),
                                                                 self.settings.timeout)
                self.dead.key = key
            return list(self.dead.letters)


STATE: web.AppKey[ConsoleState] = web.AppKey("console_state", ConsoleState)
View = Callable[[ConsoleState, Mapping[str, str], Mapping[str, str], bool], Awaitable[dict[str, Any]]]


@dataclass
class Page:
    name: str
    path: str
    template: str
    view: View
    live: str | None = None     # template of the part that updates itself
    nav: str = ""
    title: str = ""


PAGES: dict[str, Page] = {}


def page(name: str, path: str, template: str, live: str | None = None, nav: str = "",
         title: str = "") -> Callable[[View], View]:
    def register(fn: View) -> View:
        PAGES[name] = Page(name, path, template, fn, live, nav or name, title)
        return fn
    return register


# -- rendering ---------------------------------------------------------------------------------

def base_context(request: web.Request, pg: Page | None = None) -> dict[str, Any]:
    state = request.app[STATE]
    gate = state.gate
    return {
        "csrf_token": gate.csrf_token(request),
        "nav_items": NAV,
        "nav": pg.nav if pg else "",
        "read_only": state.settings.read_only,
        "auth_required": state.settings.auth.required,
        "logged_in": state.settings.auth.required and gate.logged_in(request),
        "server": state.snap.server,
        "now": time.time(),
        "now_ns": time.time_ns(),
        "publisher_url": data.strip_userinfo(state.settings.publisher_url),
        "eventing": state.settings.eventing,
    }


def render(request: web.Request, template: str, context: dict[str, Any], pg: Page | None = None,
           status: int = 200) -> web.Response:
    ctx = base_context(request, pg)
    ctx["flashes"] = request.app[STATE].gate.take_flashes(request)
    ctx.update(context)
    return aiohttp_jinja2.render_template(template, request, ctx, status=status)


def page_handler(pg: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        ctx = await pg.view(state, request.match_info, request.query, True)
        ctx.setdefault("title", pg.title or pg.name.replace("_", " ").title())
        if pg.live:
            ctx["live_src"] = request.rel_url.path_qs
            ctx["live_template"] = pg.live
        return render(request, pg.template, ctx, pg)
    return handler


def back_to(request: web.Request, form: Mapping[str, Any], default: str) -> web.HTTPSeeOther:
    target = form.get("back")
    return web.HTTPSeeOther(location=sec.safe_next(target if isinstance(target, str) else default))


def problem(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


# -- views ------------------------------------------------------------------------------------

def _usage(snap: Snapshot) -> list[dict[str, Any]]:
    acc = snap.account or {}
    limits = acc.get("limits") or {}
    rows = []
    for label, used, limit, fmt in (
            ("Streams", acc.get("streams", 0), limits.get("max_streams", -1), c.fmt_int),
            ("Consumers", acc.get("consumers", 0), limits.get("max_consumers", -1), c.fmt_int),
            ("Memory", acc.get("memory", 0), limits.get("max_memory", -1), c.human_bytes),
            ("File storage", acc.get("storage", 0), limits.get("max_storage", -1), c.human_bytes)):
        used, limit = int(used or 0), int(limit if limit is not None else -1)
        pct = None if limit <= 0 else min(100, round(100 * used / limit))
        rows.append({"label": label, "used": fmt(used), "limit": c.unlimited(limit, fmt), "pct": pct})
    return rows


def _rate_charts(state: ConsoleState) -> list[Markup]:
    s, now, window = state.sampler, time.time(), state.settings.history
    out = [charts.line_chart("Messages per second", [charts.Series("in (stored)", list(s.series["in"])),
                                                     charts.Series("out (delivered)", list(s.series["out"]))],
                             now, window, "/s", "chart-messages")]
    out.append(charts.line_chart("Event deliveries per second",
                                 [charts.Series("delivered", list(s.series["deliveries"])),
                                  charts.Series("failed", list(s.series["failures"]))], now, window, "/s",
                                 "chart-deliveries"))
    return out


def _lag_chart(state: ConsoleState, keys: list[str], title: str = "Lag (unacknowledged messages)") -> Markup:
    lag = state.sampler.lag
    chosen = sorted((k for k in keys if k in lag), key=lambda k: -(lag[k][-1][1] if lag[k] else 0))[:6]
    return charts.line_chart(title, [charts.Series(k.split("/", 1)[1], list(lag[k])) for k in chosen],
                             time.time(), state.settings.history, "", "chart-lag")


@page("overview", "/", "overview.html", live="overview_live.html", title="Overview")
async def view_overview(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                        full: bool) -> dict[str, Any]:
    snap = state.snap
    subs = snap.subscriptions
    return {"snap": snap, "usage": _usage(snap), "charts": _rate_charts(state),
            "subs_total": len(subs), "subs_ready": sum(1 for r in subs if r.ready),
            "dead_total": sum(snap.dead_letters.values()),
            "pending_total": sum(r.pending for r in subs),
            "api": (snap.account or {}).get("api") or {}}


@page("streams", "/streams", "streams.html", live="streams_live.html", title="Streams")
async def view_streams(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                       full: bool) -> dict[str, Any]:
    snap = state.snap
    return {"snap": snap, "streams": snap.streams}


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


@page("stream", "/streams/{stream}", "stream.html", live="stream_live.html", nav="streams")
async def view_stream(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                      full: bool) -> dict[str, Any]:
    name = params["stream"]
    snap = state.snap
    info = snap.stream(name)
    ctx: dict[str, Any] = {"title": f"Stream {name}", "name": name, "snap": snap, "info": info,
                           "consumers": snap.consumers.get(name, [])}
    if not full:
        return ctx
    t = state.settings.timeout
    try:
        info = await data.stream_info(state.nc, name, t, subjects_filter=">")
    except c.APIError as exc:
        if exc.code == 404:
            raise web.HTTPNotFound(text=f"no stream {name}\n") from None
        ctx["error"] = problem(exc)
    except NATS_ERRORS as exc:
        ctx["error"] = problem(exc)
    ctx["info"] = info
    subjects = ((info or {}).get("state") or {}).get("subjects") or {}
    ctx["subjects"] = sorted(subjects.items(), key=lambda kv: (-kv[1], kv[0]))[:data.SUBJECTS_SHOWN]
    ctx["subjects_total"] = len(subjects)
    ctx["config_rows"] = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in
                          sorted(((info or {}).get("config") or {}).items())]
    mode = query.get("mode", "seq")
    mode = mode if mode in ("seq", "subject", "last") else "seq"
    subject = (query.get("subject") or "").strip()[:256]
    count = max(1, min(_int(query.get("count"), 25), data.BROWSE_MAX))
    first = int(((info or {}).get("state") or {}).get("first_seq", 1) or 1)
    start = max(1, _int(query.get("start"), first))
    ctx["browse"] = {"mode": mode, "subject": subject, "count": count, "start": start, "messages": [],
                     "next": None, "error": None}
    if info is not None:
        try:
            if mode == "last":
                msgs = await data.last_per_subject(state.nc, name, t, subject, count)
            else:
                msgs = await data.browse(state.nc, name, t, start, subject if mode == "subject" else "", count)
                if len(msgs) == count:
                    ctx["browse"]["next"] = msgs[-1].seq + 1
            ctx["browse"]["messages"] = msgs
        except NATS_ERRORS as exc:
            ctx["browse"]["error"] = problem(exc)
    return ctx


@page("consumers", "/streams/{stream}/consumers", "consumers.html", live="consumers_live.html", nav="streams")
async def view_consumers(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                         full: bool) -> dict[str, Any]:
    name = params["stream"]
    infos = state.snap.consumers.get(name, [])
    return {"title": f"Consumers of {name}", "name": name, "snap": state.snap, "consumers": infos,
            "known": state.snap.stream(name) is not None,
            "chart": _lag_chart(state, [f"{name}/{ci['name']}" for ci in infos])}


@page("consumer", "/streams/{stream}/consumers/{consumer}", "consumer.html", live="consumer_live.html",
      nav="streams")
async def view_consumer(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                        full: bool) -> dict[str, Any]:
    stream, name = params["stream"], params["consumer"]
    info = state.snap.consumer(stream, name)
    ctx: dict[str, Any] = {"title": f"Consumer {stream} > {name}", "stream": stream, "name": name,
                           "info": info, "snap": state.snap,
                           "chart": _lag_chart(state, [f"{stream}/{name}"], "Lag of this consumer")}
    if full:
        try:
            info = await data.consumer_info(state.nc, stream, name, state.settings.timeout)
        except c.APIError as exc:
            if exc.code == 404:
                raise web.HTTPNotFound(text=f"no consumer {stream} > {name}\n") from None
            ctx["error"] = problem(exc)
        except NATS_ERRORS as exc:
            ctx["error"] = problem(exc)
        ctx["info"] = info
        ctx["config_rows"] = [(k, v if isinstance(v, str) else json.dumps(v))
                              for k, v in sorted(((info or {}).get("config") or {}).items())]
    return ctx


@page("subscriptions", "/subscriptions", "subscriptions.html", live="subscriptions_live.html",
      title="Subscriptions")
async def view_subscriptions(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                             full: bool) -> dict[str, Any]:
    return {"snap": state.snap, "rows": state.snap.subscriptions}


def _letters_of(row: SubscriptionRow | None, letters: list[data.Message]) -> list[data.Message]:
    if row is None:
        return letters
    consumers = {x["name"] for x in row.consumers}
    return [m for m in letters if m.header(d.H_SUBSCRIPTION) == row.key or m.header(d.H_CONSUMER) in consumers]


@page("subscription", "/subscriptions/{namespace}/{name}", "subscription.html", live="subscription_live.html",
      nav="subscriptions")
async def view_subscription(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                            full: bool) -> dict[str, Any]:
    ns, name = params["namespace"], params["name"]
    row = state.snap.subscription(ns, name)
    if row is None and full:
        raise web.HTTPNotFound(text=f"no Subscription {ns}/{name}\n")
    ctx: dict[str, Any] = {"title": f"Subscription {ns}/{name}", "row": row, "snap": state.snap,
                           "namespace": ns, "name": name}
    if row is not None:
        ctx["chart"] = _lag_chart(state, [f"{x['stream']}/{x['name']}" for x in row.consumers])
        ctx["manifest"] = data.manifest_yaml(row.sub)
        try:
            ctx["letters"] = _letters_of(row, await state.dead_letters()) if row.dead_letters else []
        except NATS_ERRORS as exc:
            ctx["letters"], ctx["letters_error"] = [], problem(exc)
    return ctx


@page("dead_letters", "/dead-letters", "dead_letters.html", live="dead_letters_live.html", title="Dead letters")
async def view_dead_letters(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                            full: bool) -> dict[str, Any]:
    wanted = (query.get("subscription") or "").strip()
    row = None
    if wanted:
        ns, _, name = wanted.partition("/")
        row = state.snap.subscription(ns, name)
    ctx: dict[str, Any] = {"snap": state.snap, "subscription": wanted, "row": row,
                           "dlq": state.snap.stream(state.settings.eventing.dead_letter.stream)}
    try:
        letters = await state.dead_letters()
        if wanted:
            letters = [m for m in _letters_of(row, letters) if row is not None or
                       m.header(d.H_SUBSCRIPTION) == wanted]
        ctx["letters"] = letters
    except NATS_ERRORS as exc:
        ctx["letters"], ctx["letters_error"] = [], problem(exc)
    return ctx


PUBLISH_DEFAULTS = {"type": "order.received.v1", "source": "myapp", "id": "", "content_type": "application/json",
                    "data": '{"orderCode": "3211213"}', "mode": "binary"}


@page("publish", "/publish", "publish.html", title="Publish")
async def view_publish(state: ConsoleState, params: Mapping[str, str], query: Mapping[str, str],
                       full: bool) -> dict[str, Any]:
    return {"form": dict(PUBLISH_DEFAULTS)}


# -- page handlers that need the request ------------------------------------------------------

async def publish_page(request: web.Request) -> web.StreamResponse:
    pg = PAGES["publish"]
    ctx = await pg.view(request.app[STATE], request.match_info, request.query, True)
    kept = request.app[STATE].gate.kept_form(request)
    if kept:
        ctx["form"].update(kept)
    return render(request, pg.template, ctx, pg)


async def confirm_page(request: web.Request) -> web.StreamResponse:
    """GET /streams/{stream}/purge|delete and /dead-letters/purge: the question before the POST."""
    state = request.app[STATE]
    action = request.match_info.get("action") or "purge-dead-letters"
    ctx: dict[str, Any] = {"action": action, "title": "Confirm"}
    if action in ("purge", "delete"):
        name = request.match_info["stream"]
        info = state.snap.stream(name)
        if info is None:
            raise web.HTTPNotFound(text=f"no stream {name}\n")
        ctx.update({"stream": name, "info": info, "title": f"{action.title()} stream {name}?",
                    "post": f"/streams/{name}/{action}", "back": f"/streams/{name}"})
    else:
        wanted = (request.query.get("subscription") or "").strip()
        ctx.update({"subscription": wanted, "post": "/dead-letters/purge", "title": "Purge dead letters?",
                    "back": "/dead-letters" + (f"?subscription={wanted}" if wanted else ""),
                    "count": _dead_count(state, wanted)})
    return render(request, "confirm.html", ctx, PAGES["streams" if action != "purge-dead-letters" else "dead_letters"])


def _dead_count(state: ConsoleState, wanted: str) -> int:
    if not wanted:
        return sum(state.snap.dead_letters.values())
    ns, _, name = wanted.partition("/")
    row = state.snap.subscription(ns, name)
    return row.dead_letters if row else 0


# -- actions (POST) ---------------------------------------------------------------------------

def writable(request: web.Request) -> None:
    if request.app[STATE].settings.read_only:
        raise web.HTTPForbidden(text="this console is read-only\n")


async def stream_action(request: web.Request) -> web.StreamResponse:
    writable(request)
    state = request.app[STATE]
    gate = state.gate
    name, action = request.match_info["stream"], request.match_info["action"]
    form = await request.post()
    if form.get("confirm") != name:
        gate.flash(request, "error", f"not confirmed: type the stream name {name} to {action} it")
        raise web.HTTPSeeOther(location=f"/streams/{name}/{action}")
    try:
        if action == "purge":
            purged = await data.purge_stream(state.nc, name, state.settings.timeout)
            gate.flash(request, "ok", f"purged {c.fmt_int(purged)} message(s) from stream {name}")
            await state.sampler.sample()
            raise web.HTTPSeeOther(location=f"/streams/{name}")
        await data.delete_stream(state.nc, name, state.settings.timeout)
        gate.flash(request, "ok", f"stream {name} deleted")
        await state.sampler.sample()
        raise web.HTTPSeeOther(location="/streams")
    except NATS_ERRORS as exc:
        gate.flash(request, "error", problem(exc))
        raise web.HTTPSeeOther(location=f"/streams/{name}") from None


def _wanted_letters(state: ConsoleState, form: Mapping[str, Any], letters: list[data.Message]) -> list[data.Message]:
    wanted = str(form.get("subscription") or "").strip()
    if not wanted:
        return letters
    ns, _, name = wanted.partition("/")
    row = state.snap.subscription(ns, name)
    return [m for m in _letters_of(row, letters) if row is not None or m.header(d.H_SUBSCRIPTION) == wanted]


async def dead_letter_action(request: web.Request) -> web.StreamResponse:
    writable(request)
    state = request.app[STATE]
    gate, cfg, t = state.gate, state.settings.eventing, state.settings.timeout
    action = request.match_info["action"]
    form = await request.post()
    redirect = back_to(request, form, "/dead-letters")
    seq = _int(form.get("seq"), 0)
    try:
        if action in ("replay", "delete") and seq:
            letter = await data.dead_letter(state.nc, cfg, seq, t)
            if letter is None:
                gate.flash(request, "error", f"no dead letter with sequence {seq}")
                raise redirect
            if action == "delete":
                await data.delete_message(state.nc, cfg.dead_letter.stream, seq, t)
                gate.flash(request, "ok", f"dead letter {seq} deleted")
            else:
                done, problems = await data.replay(state.nc, cfg, [letter], t)
                _report_replay(gate, request, done, 1, problems)
        elif action == "replay":
            letters = _wanted_letters(state, form, await state.dead_letters())
            done, problems = await data.replay(state.nc, cfg, letters, t)
            _report_replay(gate, request, done, len(letters), problems)
        elif action == "purge":
            if form.get("confirm") != "purge":
                gate.flash(request, "error", "not confirmed")
                raise redirect
            purged = await _purge_dead_letters(state, str(form.get("subscription") or "").strip())
            gate.flash(request, "ok", f"purged {c.fmt_int(purged)} dead letter(s)")
        else:
            raise web.HTTPBadRequest(text="nothing to do: give a sequence\n")
    except NATS_ERRORS as exc:
        gate.flash(request, "error", problem(exc))
    await state.sampler.sample()
    raise redirect


def _report_replay(gate: sec.Gate, request: web.Request, done: int, total: int, problems: list[str]) -> None:
    gate.flash(request, "ok" if not problems else "error",
               f"replayed {done} of {total} dead-lettered event(s)" + (f": {'; '.join(problems)}" if problems else ""))


async def _purge_dead_letters(state: ConsoleState, wanted: str) -> int:
    cfg, t = state.settings.eventing, state.settings.timeout
    if not wanted:
        if state.snap.stream(cfg.dead_letter.stream) is None:
            return 0
        return await data.purge_stream(state.nc, cfg.dead_letter.stream, t)
    ns, _, name = wanted.partition("/")
    row = state.snap.subscription(ns, name)
    if row is None:
        return 0
    purged = 0
    for consumer in (x["name"] for x in row.consumers):
        if state.snap.dead_letters.get(consumer):
            purged += await data.purge_stream(state.nc, cfg.dead_letter.stream, t,
                                              d.dead_letter_subject(cfg.dead_letter.subject_prefix, consumer))
    return purged


async def publish_action(request: web.Request) -> web.StreamResponse:
    writable(request)
    import argparse

    import aiohttp

    from pyjetstream.cli.event import build_request

    state = request.app[STATE]
    gate = state.gate
    form = await request.post()
    values = {k: str(form.get(k) or "")[:65536] for k in PUBLISH_DEFAULTS}
    gate.keep_form(request, values)
    if not values["type"].strip():
        gate.flash(request, "error", "the event type is required")
        raise web.HTTPSeeOther(location="/publish")
    args = argparse.Namespace(url=state.settings.publisher_url, legacy=None, header=None,
                              structured=values["mode"] == "structured", type=values["type"].strip(),
                              source=values["source"].strip() or "console", id=values["id"].strip() or None,
                              data=values["data"], content_type=values["content_type"].strip() or "application/json",
                              eventtypeversion=None)
    try:
        url, headers, body = build_request(args)
        if state.settings.publisher_token:
            headers["Authorization"] = f"Bearer {state.settings.publisher_token}"
        timeout = aiohttp.ClientTimeout(total=state.settings.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http, \
                http.post(url, headers=headers, data=body, allow_redirects=False) as resp:
            text = (await resp.content.read(1024)).decode("utf-8", "replace").strip()
            ok = 200 <= resp.status < 300
            gate.flash(request, "ok" if ok else "error",
                       f"{'published' if ok else 'rejected'}: {resp.status} {resp.reason}" + (f": {text}" if text else ""))
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        gate.flash(request, "error", f"cannot reach the publisher proxy at {data.strip_userinfo(state.settings.publisher_url)}: "
                                     f"{problem(exc)}")
    raise web.HTTPSeeOther(location="/publish")


# -- login --------------------------------------------------------------------------------------

async def login_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not state.settings.auth.required:
        raise web.HTTPSeeOther(location="/")
    return render(request, "login.html", {"title": "Log in", "mode": state.settings.auth.mode,
                                          "next": sec.safe_next(request.query.get("next"))})


async def login_action(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not state.settings.auth.required:
        raise web.HTTPSeeOther(location="/")
    form = await request.post()
    target = sec.safe_next(str(form.get("next") or "/"))
    user, secret = str(form.get("user") or ""), str(form.get("secret") or "")
    if not state.gate.credentials_ok(user, secret):
        await asyncio.sleep(sec.FAILED_LOGIN_DELAY)
        return render(request, "login.html", {"title": "Log in", "mode": state.settings.auth.mode, "next": target,
                                              "failed": True}, status=401)
    response = web.HTTPSeeOther(location=target)
    state.gate.login(request, response)
    raise response


async def logout_action(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.gate.logout(request)
    response = web.HTTPSeeOther(location="/login" if state.settings.auth.required else "/")
    response.del_cookie(sec.COOKIE, path="/")
    raise response


async def healthz(request: web.Request) -> web.StreamResponse:
    snap = request.app[STATE].snap
    ok = snap.error is None and snap.server.get("connected", False)
    return web.json_response({"ok": ok}, status=200 if ok else 503)


# -- live updates (server-sent events) --------------------------------------------------------

async def live(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    src = request.query.get("src", "")
    if not src.startswith("/") or src.startswith("//") or len(src) > 2048:
        raise web.HTTPBadRequest(text="src must be a page of this console\n")
    target = URL(src)
    match = await request.app.router.resolve(request.clone(method="GET", rel_url=target))
    route = getattr(match, "route", None)
    pg = PAGES.get(getattr(route, "name", None) or "")
    if pg is None or pg.live is None or match.http_exception is not None:
        raise web.HTTPNotFound(text="no live view there\n")
    if state.live_streams >= state.settings.max_live:
        raise web.HTTPServiceUnavailable(text="too many live views open\n")
    params = dict(match)
    env = aiohttp_jinja2.get_env(request.app)
    template = env.get_template(pg.live)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "X-Accel-Buffering": "no"})
    state.live_streams += 1
    try:
        await response.prepare(request)
        last = None
        while not state.sampler.stopped:
            tick = state.sampler.next_tick()
            if state.settings.auth.required and not request[sec.HEADER_AUTH] \
                    and not state.gate.logged_in(request):
                await response.write(b"event: login\ndata: expired\n\n")
                break
            try:
                ctx = base_context(request, pg)
                ctx.update(await pg.view(state, params, target.query, False))
                html = template.render(ctx)
            except web.HTTPException:
                html = "<p class='flash error'>gone</p>"
            if html != last:
                payload = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
                await response.write(f"event: fragment\n{payload}\n".encode())
                last = html
            try:
                await asyncio.wait_for(tick.wait(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
    except ConnectionResetError:
        pass  # the browser went away (aiohttp's ClientConnectionResetError is one too)
    finally:
        state.live_streams -= 1
    return response


# -- the application --------------------------------------------------------------------------

def _filters(env: jinja2.Environment) -> None:
    def age_rfc(text: str | None, now_ns: int | None = None) -> str:
        return c.age(now_ns or time.time_ns(), c.parse_time_ns(text) if text else 0)

    def age_s(at: float | None) -> str:
        if at is None:
            return "before the console started"
        return c.human_duration(max(0.0, time.time() - at) * 1e9) + " ago"

    env.filters.update({
        "bytes": lambda n: c.human_bytes(int(n or 0)),
        "num": c.fmt_int,
        "duration_ns": c.human_duration,
        "age_rfc": age_rfc,
        "age_s": age_s,
        "time_rfc": lambda text: c.format_time(c.parse_time_ns(text)) if text and c.parse_time_ns(text) else "",
        "time_ns": lambda ns: c.format_time(ns) if ns else "",
        "unlimited": lambda n: c.unlimited(n),
        "summary": data.letter_summary,
    })


def create_app(settings: ConsoleSettings, nc: Any, sampler: Sampler | None = None) -> web.Application:
    """The aiohttp application; the caller starts (and stops) `sampler`."""
    gate = sec.Gate(settings)
    app = web.Application(middlewares=sec.middlewares(gate), client_max_size=256 * 1024)
    app[STATE] = ConsoleState(settings, nc, sampler or Sampler(nc, settings), gate)
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                               autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                               undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    _filters(env)
    app.on_response_prepare.append(sec.on_prepare)
    r = app.router
    # Not aiohttp's default Expect handler: it answers 500 to a value that is not UTF-8.
    ex: dict[str, Any] = {"expect_handler": expect_handler}
    for pg in PAGES.values():
        if pg.name != "publish":
            r.add_get(pg.path, page_handler(pg), name=pg.name, **ex)
    r.add_get("/publish", publish_page, name="publish", **ex)
    r.add_post("/publish", publish_action, **ex)
    r.add_get("/streams/{stream}/{action:purge|delete}", confirm_page, **ex)
    r.add_post("/streams/{stream}/{action:purge|delete}", stream_action, **ex)
    r.add_get("/dead-letters/purge", confirm_page, **ex)
    r.add_post("/dead-letters/{action:replay|delete|purge}", dead_letter_action, **ex)
    r.add_get("/login", login_page, **ex)
    r.add_post("/login", login_action, **ex)
    r.add_post("/logout", logout_action, **ex)
    r.add_get("/live", live, **ex)
    r.add_get("/healthz", healthz, **ex)
    r.add_static("/static/", HERE / "static", show_index=False, follow_symlinks=False)
    add_fallback(r)
    return app
