"""HTTP monitoring endpoints with nats-server's field names: /varz, /connz, /subsz, /healthz,
/jsz, plus Prometheus /metrics.

Owns only the rendering of server state into these documents and the aiohttp app serving
them. Reads server, client and JetStream state; never changes it. Other components add
Prometheus collectors through `pyjetstream.monitoring.metrics`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sys
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from pyjetstream.httpd import add_fallback, add_routes
from pyjetstream.jetstream import fair
from pyjetstream.subjects.match import is_valid_literal_subject, subject_matches
from pyjetstream.version import VERSION

if TYPE_CHECKING:
    from pyjetstream.monitoring.view import MonitoredServer
    from pyjetstream.server.client import ClientConnection


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(seconds: float) -> str:
    """nats-server's uptime/idle style: 1d2h3m4s, 5m6s, 7s, 120ms."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    out = ""
    if d:
        out += f"{d}d"
    if h or d:
        out += f"{h}h"
    if m or h or d:
        out += f"{m}m"
    return out + f"{s}s"


def _rss_bytes() -> int:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MonitorServer:
    def __init__(self, server: MonitoredServer, closed_keep: int = 10000) -> None:
        self.server = server
        self.closed: deque[dict[str, Any]] = deque(maxlen=closed_keep)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.host = ""
        self.app = web.Application()
        add_routes(self.app.router, [("GET", "/", self.root), ("GET", "/varz", self.varz),
                                     ("GET", "/connz", self.connz), ("GET", "/subsz", self.subsz),
                                     ("GET", "/subscriptionsz", self.subsz), ("GET", "/healthz", self.healthz),
                                     ("GET", "/jsz", self.jsz), ("GET", "/metrics", self.metrics)])
        add_fallback(self.app.router)
        self.http_req_stats: dict[str, int] = {}
        # Prometheus collectors other components of this process add (metrics.add_collector)
        self.collectors: list[Any] = []
        self.started_cpu = time.process_time()

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port if port > 0 else 0, reuse_address=True)
        await site.start()
        server = site._server
        # an asyncio.Server, or uvloop's equivalent (not a subclass)
        sockets = cast(asyncio.Server, server).sockets if server is not None else []
        self.port = sockets[0].getsockname()[1] if sockets else port
        self.host = host
        import logging

        logging.getLogger("pyjetstream.server").info("Starting http monitor on %s:%d", host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def record_closed(self, c: ClientConnection, reason: str) -> None:
        # keep the auth fields and the subscriptions (as nats-server keeps them for closed
        # connections); connz drops them per request unless asked for with ?auth=1 / ?subs=
        info = self.conn_info(c, time.time(), subs="detail", auth=True)
        info["stop"] = rfc3339(time.time())
        info["reason"] = reason
        self.closed.append(info)

    def _count(self, name: str) -> None:
        self.http_req_stats[name] = self.http_req_stats.get(name, 0) + 1

    # ------------------------------------------------------------------ documents
    def varz_doc(self) -> dict[str, Any]:
        s = self.server
        o = s.opts
        now = time.time()
        totals = s.totals()
        doc: dict[str, Any] = {
            "server_id": s.server_id, "server_name": s.server_name, "version": _version(),
            "proto": 1, "go": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "host": o.host, "port": s.port,
            "max_connections": o.max_connections, "ping_interval": int(o.ping_interval * 1e9), "ping_max": o.ping_max,
            "http_host": self.host, "http_port": self.port, "http_base_path": "", "https_port": 0,
            "auth_timeout": o.auth_timeout, "max_control_line": o.max_control_line,
            "max_payload": o.max_payload, "max_pending": o.max_pending, "tls_timeout": o.tls_timeout,
            "write_deadline": int(o.write_deadline * 1e9), "start": rfc3339(s.start_time), "now": rfc3339(now),
            "uptime": go_duration(now - s.start_time), "mem": _rss_bytes(), "cores": os.cpu_count() or 1,
            "gomaxprocs": 1, "cpu": round(100 * (time.process_time() - self.started_cpu) / max(now - s.start_time, 1e-9), 2),
            "connections": len(s.clients), "total_connections": s.total_connections, "routes": 0,
            "remotes": 0, "leafnodes": 0, "in_msgs": totals["in_msgs"], "out_msgs": totals["out_msgs"],
            "in_bytes": totals["in_bytes"], "out_bytes": totals["out_bytes"], "slow_consumers": s.slow_consumers,
            "subscriptions": sum(a.sublist.count for a in s.accounts.values()),
            "http_req_stats": dict(self.http_req_stats), "config_load_time": rfc3339(s.start_time),
            "system_account": "$SYS",
            # added by 2.10-2.12: no routes, gateways or leaf nodes here, so only clients count;
            # we never stall a client (a full one is cut off as slow), and the config digest,
            # a hash of nats-server's parsed config file, is not computed
            "slow_consumer_stats": {"clients": s.slow_consumers, "routes": 0, "gateways": 0, "leafs": 0},
            "stale_connections": s.stale_connections,
            "stale_connection_stats": {"clients": s.stale_connections, "routes": 0, "gateways": 0, "leafs": 0},
            "stalled_clients": 0, "config_digest": "",
            # subsystems we do not have: nats-server shows them as empty objects
            "cluster": {}, "gateway": {}, "leaf": {}, "mqtt": {}, "websocket": {}, "jetstream": {},
        }
        if s.auth.expect_connect:
            doc["auth_required"] = True  # omitted when false, as nats-server does
        if o.server_name:
            doc["server_name"] = o.server_name
        if o.tls:
            doc["tls_required"] = True
            doc["tls_verify"] = o.tls_verify
        if s.jetstream is not None:
            doc["jetstream"] = s.jetstream.varz()
        return doc

    def conn_info(self, c: ClientConnection, now: float, subs: str, auth: bool = False) -> dict[str, Any]:
        """One /connz entry. `subs`: "" (none), "list" or "detail"; `auth` adds the user and
        (for a named account) the account, like nats-server's ?auth=1."""
        info: dict[str, Any] = {
            "cid": c.cid, "kind": "Client", "type": "nats", "ip": c.host, "port": c.port,
            "start": rfc3339(c.start), "last_activity": rfc3339(c.last_activity), "rtt": "0s",
            "uptime": go_duration(now - c.start), "idle": go_duration(now - c.last_activity),
            # only what the socket has not taken: our own output list is written before the loop
            # next waits, so counting it would report a race, not a backlog
            "pending_bytes": c.transport.get_write_buffer_size() if (c.transport and not c.closed) else 0,
            "in_msgs": c.in_msgs,
            "out_msgs": c.out_msgs, "in_bytes": c.in_bytes, "out_bytes": c.out_bytes,
            "subscriptions": len(c.subs),
        }
        # name, lang and version are whatever the client's CONNECT said: text, but possibly
        # not a string or not valid Unicode, so they pass through safe_text
        if c.name:
            info["name"] = safe_text(c.name)
        if c.lang:
            info["lang"] = safe_text(c.lang)
        if c.version:
            info["version"] = safe_text(c.version)
        if c.tls_version:
            info["tls_version"] = c.tls_version
            info["tls_cipher_suite"] = c.tls_cipher
        if auth:
            if c.user:
                info["authorized_user"] = safe_text(c.user)
            if c.account.name != "$G":
                info["account"] = safe_text(c.account.name)
        if subs == "list" and c.subs:
            info["subscriptions_list"] = [safe_text(s.subject) for s in c.subs.values()]
        elif subs == "detail" and c.subs:
            info["subscriptions_list_detail"] = [sub_detail(s, c.cid) for s in c.subs.values()]
        return info

    # ------------------------------------------------------------------ handlers
    async def root(self, request: web.Request) -> web.Response:
        links = "".join(f'<a href="{p}">{p}</a><br/>' for p in ("varz", "connz", "subsz", "jsz", "healthz", "metrics"))
        return web.Response(text=f"<html><body>pyjetstream monitoring<br/>{links}</body></html>",
                            content_type="text/html")

    async def varz(self, request: web.Request) -> web.Response:
        self._count("/varz")
        return web.json_response(self.varz_doc(), dumps=_dumps)

    async def connz(self, request: web.Request) -> web.Response:
        self._count("/connz")
        q = request.query
        # decoded in nats-server's order, each bad value a 400 with its message (HandleConnz)
        try:
            auth = _go_bool(q, "auth")
            subs = "detail" if q.get("subs", "").lower() == "detail" else "list" if _go_bool(q, "subs") else ""
            offset = _go_int(q, "offset")
            limit = _go_int(q, "limit")
            cid = _go_uint64(q, "cid")
            state = _go_state(q)
        except ValueError as exc:
            return _bad_request(str(exc))
        sort = q.get("sort", "") or "cid"
        if sort not in _CONNZ_SORT_KEYS:
            return _bad_request(f"invalid sorting option: {sort}")
        if sort in ("stop", "reason") and state != "closed":
            return _bad_request(f"sort by {sort} only valid on closed connections")
        user, acc = q.get("user", ""), q.get("acc", "")
        # nats-server's paging rules (Connz): a negative offset is 0, a limit of 0 or less is
        # the default 1024, and asking for one cid means a page of one
        offset = max(offset, 0)
        if limit <= 0:
            limit = DEFAULT_LIST_SIZE
        if cid > 0:
            limit = 1
        now = time.time()
        doc: dict[str, Any] = {"server_id": self.server.server_id, "now": rfc3339(now), "num_connections": 0,
                               "total": 0, "offset": offset, "limit": limit, "connections": []}
        if acc and acc not in self.server.accounts:
            return web.json_response(doc, dumps=_dumps)  # nats-server: an unknown account has nothing
        open_conns = [c for c in self.server.clients.values() if not acc or c.account.name == acc]
        closed_all = [ci for ci in self.closed if not acc or ci.get("account", "$G") == acc]
        # `total` counts the connections of the state (and account) asked for, before the user
        # and cid filters, as nats-server's does
        total = (len(open_conns) if state != "closed" else 0) + (len(closed_all) if state != "open" else 0)
        page = await fair.complete(self._connz_page(open_conns, closed_all, now, state, subs, auth, cid, user,
                                                    sort, offset, limit))
        doc.update(num_connections=len(page), total=total, connections=page)
        return await _json_response(doc)

    def _connz_page(self, open_conns: list[ClientConnection], closed_all: list[dict[str, Any]], now: float,
                    state: str, subs: str, auth: bool, cid: int, user: str, sort: str, offset: int,
                    limit: int) -> fair.Job[list[dict[str, Any]]]:
        """The connections of one /connz page, made in slices (fair.py): sorted and paged on
        the cheap fields first, as nats-server does, then only the page gets its
        subscriptions, which may number many thousands per connection."""
        rows: list[tuple[dict[str, Any], ClientConnection | None]] = []
        if state != "closed":
            for c in open_conns:
                if (not cid or c.cid == cid) and (not user or c.user == user):
                    rows.append((self.conn_info(c, now, "", auth), c))
                    yield from fair.pause()
        if state != "open":
            for ci in closed_all:
                if (not cid or ci["cid"] == cid) and (not user or ci.get("authorized_user", "") == user):
                    rows.append((_closed_view(ci, subs, auth), None))
                    yield from fair.pause()
        key, reverse = _CONNZ_SORT_KEYS[sort]
        rows.sort(key=lambda r: r[0].get(key, 0), reverse=reverse)
        # Python slicing cannot overflow; nats-server's offset+limit can (its answer is then a
        # dropped connection), so huge values here just mean "to the end"
        page = rows[offset:offset + limit]
        if subs:
            for info, owner in page:
                if owner is None or not owner.subs:
                    continue
                listed = list(owner.subs.values())  # the client may (un)subscribe between slices
                out: list[Any] = []
                for i in range(0, len(listed), fair.SUBJECTS_CHUNK):
                    part = listed[i:i + fair.SUBJECTS_CHUNK]
                    out += ([safe_text(sub.subject) for sub in part] if subs == "list"
                            else [sub_detail(sub, owner.cid) for sub in part])
                    yield from fair.pause()
                info["subscriptions_list" if subs == "list" else "subscriptions_list_detail"] = out
        return [info for info, _c in page]

    async def subsz(self, request: web.Request) -> web.Response:
        self._count("/subsz")
        q = request.query
        try:
            want_list = _go_bool(q, "subs")
            offset = _go_int(q, "offset")
            limit = _go_int(q, "limit")
        except ValueError as exc:
            return _bad_request(str(exc))
        test = q.get("test", "")
        if test and not is_valid_literal_subject(test):
            return _bad_request(f"invalid test subject, must be valid publish subject: {test}")
        offset = max(offset, 0)
        if limit <= 0:
            limit = DEFAULT_LIST_SIZE
        s = self.server
        acc = q.get("acc", "")
        accounts = [a for a in s.accounts.values() if not acc or a.name == acc]
        total = sum(a.sublist.count for a in accounts)
        doc: dict[str, Any] = {"server_id": s.server_id, "now": rfc3339(time.time()), "num_subscriptions": total,
                               "num_cache": 0, "num_inserts": 0, "num_removes": 0, "num_matches": 0,
                               "cache_hit_rate": 0, "max_fanout": 0, "avg_fanout": 0}
        for a in accounts:
            st = a.sublist.stats()
            doc["num_cache"] += st.get("cache_size", 0)
            doc["num_inserts"] += st.get("inserts", 0)
            doc["num_removes"] += st.get("removes", 0)
            doc["num_matches"] += st.get("matches", 0)
        if doc["num_matches"]:
            hits = sum(a.sublist.stats().get("cache_hits", 0) for a in accounts)
            doc["cache_hit_rate"] = hits / doc["num_matches"]
        if want_list:
            page = await fair.complete(_subsz_page(s, {a.name for a in accounts}, test, offset, limit))
            # nats-server shows the list and its paging only when the page has something, and
            # its `total` is the size of the page, not of the whole list
            if page:
                doc.update(total=len(page), offset=offset, limit=limit,
                           subscriptions_list=[{"account": safe_text(sub.account.name),
                                                **sub_detail(sub, c.cid)} for sub, c in page])
        return await _json_response(doc)

    async def healthz(self, request: web.Request) -> web.Response:
        self._count("/healthz")
        try:
            for name in ("js-enabled-only", "js-server-only", "js-enabled"):
                _go_bool(request.query, name)
        except ValueError as exc:
            return _bad_request(str(exc))
        # nats-server 2.9.10 answers ok for js-enabled and js-enabled-only alike when JetStream
        # is off (the options only narrow which JetStream checks run); a standalone server has
        # no stream or consumer that can be behind, so only lame duck mode makes it unhealthy.
        if self.server.lame_duck:
            return web.json_response({"status": "unavailable", "error": "lame duck mode"}, status=503,
                                     dumps=_compact)
        return web.json_response({"status": "ok"}, dumps=_compact)

    async def jsz(self, request: web.Request) -> web.Response:
        self._count("/jsz")
        q = request.query
        try:
            # in nats-server's order (HandleJsz), so the first bad one is the one reported
            accounts, streams, consumers, config = (
                _go_bool(q, k) for k in ("accounts", "streams", "consumers", "config"))
            offset = _go_int(q, "offset")
            limit = _go_int(q, "limit")
            _go_bool(q, "leader-only")  # a standalone server always leads
        except ValueError as exc:
            return _bad_request(str(exc))
        head = {"server_id": self.server.server_id, "now": rfc3339(time.time())}
        js = self.server.jetstream
        if js is None:
            return web.json_response({**head, **_JSZ_DISABLED}, dumps=_dumps)
        acc = q.get("acc", "")
        # nats-server: `acc` naming a JetStream account narrows the details to it (and asks for
        # them); any other name is ignored, so the details list every account when asked for.
        if acc not in js.accounts:
            acc = ""
        doc = js.jsz(streams=streams, consumers=consumers, config=config, accounts=accounts, acc=acc)
        if not acc and isinstance(doc.get("account_details"), list):
            doc["account_details"] = _jsz_account_page(doc["account_details"], offset, limit)
            if not doc["account_details"]:
                del doc["account_details"]  # nats-server leaves an empty page out (omitempty)
        return web.json_response({**head, **jsz_like_nats_server(doc, self.server.server_name, config)},
                                 dumps=_dumps)

    async def metrics(self, request: web.Request) -> web.Response:
        self._count("/metrics")
        from pyjetstream.monitoring.metrics import render_metrics

        body, ctype = render_metrics(self.server, list(self.collectors))
        return web.Response(body=body, headers={"Content-Type": ctype})


def _subsz_page(server: MonitoredServer, accounts: set[str], test: str, offset: int,
                limit: int) -> fair.Job[list[tuple[Any, ClientConnection]]]:
    """One /subsz page of client subscriptions, gathered client by client in slices (the
    subject index cannot be walked across a pause; a client's own table is copied at once)."""
    out: list[tuple[Any, ClientConnection]] = []
    skip = offset  # counted, not kept: a far page must not cost memory for the ones before it
    for c in list(server.clients.values()):
        if c.account.name not in accounts or not c.subs:
            continue
        listed = list(c.subs.values())
        for i in range(0, len(listed), fair.SUBJECTS_CHUNK):
            for sub in listed[i:i + fair.SUBJECTS_CHUNK]:
                if not test or subject_matches(sub.subject, test):
                    if skip:
                        skip -= 1
                    elif len(out) < limit:
                        out.append((sub, c))
            yield from fair.pause()
        if len(out) >= limit:
            break
    return out


async def _json_response(doc: dict[str, Any]) -> web.Response:
    """A monitoring document as nats-server renders it (indented JSON). A page of connections
    with their subscriptions runs to megabytes, and indented JSON is Python's slow encoder:
    big documents are cleaned and encoded in slices (fair.py), taking turns with other long
    requests, rather than in a thread that would contend with the loop for the GIL."""
    if not _big(doc):
        return web.Response(text=_dumps(doc), content_type="application/json")
    body = await fair.complete(_encode_sliced(doc))
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _big(doc: dict[str, Any]) -> bool:
    return len(doc.get("connections") or ()) > 64 or len(doc.get("subscriptions_list") or ()) > 64 or any(
        len(c.get("subscriptions_list") or c.get("subscriptions_list_detail") or ()) > 64
        for c in doc.get("connections") or ())


def _encode_sliced(doc: dict[str, Any]) -> fair.Job[bytes]:
    """_dumps(doc), in slices: the big lists are cleaned item by item, then the encoder's
    pieces are gathered a few hundred at a time."""
    clean: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, list) and k in ("connections", "subscriptions_list"):
            items = []
            for item in v:
                if isinstance(item, dict):
                    out: dict[str, Any] = {}
                    for ik, iv in item.items():
                        # a connection's subscriptions are made by sub_detail()/safe_text()
                        # already: copying tens of thousands of them again only feeds the
                        # garbage collector, whose full passes stall the whole process
                        out[safe_text(ik)] = iv if ik.startswith("subscriptions_list") else _clean(iv)
                    item = out
                elif k != "subscriptions_list":
                    item = _clean(item)
                items.append(item)
                yield from fair.pause()
            clean[safe_text(k)] = items
        else:
            clean[safe_text(k)] = _clean(v)
    blocks: list[bytes] = []  # joined and encoded as it goes: one join of millions of pieces stalls
    parts: list[str] = []
    for piece in json.JSONEncoder(indent=2).iterencode(clean):
        parts.append(piece)
        if len(parts) >= 4096:
            blocks.append("".join(parts).encode())
            parts.clear()
            yield from fair.pause()
    blocks.append("".join(parts).encode())
    return b"".join(blocks)


def _version() -> str:
    return VERSION


REPLACEMENT_CHAR = "\ufffd"
# surrogates outside U+DC80..U+DCFF, the range surrogateescape uses for undecodable bytes
_LONE_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def safe_text(value: Any) -> str:
    """`value` as valid Unicode text for a JSON document, whatever a client put in it.

    Subjects, queue names and sids arrive as bytes and are kept either as bytes or as str
    decoded with surrogateescape; CONNECT fields may hold JSON `\\udXXX` escapes or even
    non-strings. Invalid UTF-8 becomes U+FFFD, as Go's encoding/json renders it in nats-server,
    so the document is always encodable and every reader sees the same text."""
    if isinstance(value, str):
        if value.isascii():
            return value
        # surrogates that are not escaped bytes (say from a JSON "\\ud800" escape) are one
        # U+FFFD each, as Go decodes them; surrogateescape then gives back the client's original
        # bytes, and "replace" marks the invalid ones
        value = _LONE_SURROGATE.sub(REPLACEMENT_CHAR, value)
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return safe_text(str(value))


def sub_detail(sub: Any, cid: int) -> dict[str, Any]:
    """One subscription as nats-server's SubDetail renders it."""
    d: dict[str, Any] = {"subject": safe_text(sub.subject)}
    if sub.queue:
        d["qgroup"] = safe_text(sub.queue)
    d.update(sid=safe_text(sub.sid), msgs=sub.delivered, cid=cid)
    return d


def _closed_view(info: dict[str, Any], subs: str, auth: bool) -> dict[str, Any]:
    """A recorded closed connection as one /connz request asked for it: the auth fields only
    with ?auth=1, its subscriptions as a list or in detail only with ?subs=."""
    view = {k: v for k, v in info.items()
            if k != "subscriptions_list_detail" and (auth or k not in ("authorized_user", "account"))}
    detail = info.get("subscriptions_list_detail")
    if detail and subs == "detail":
        view["subscriptions_list_detail"] = detail
    elif detail and subs == "list":
        view["subscriptions_list"] = [d["subject"] for d in detail]
    return view


def _jsz_account_page(details: list[dict[str, Any]], offset: int, limit: int) -> list[dict[str, Any]]:
    """nats-server's /jsz account paging: sorted by name when an offset is given, then
    offset and limit (0: 1024). nats-server panics on a negative offset or limit (the client
    sees a dropped connection); here a negative offset is 0 and a negative limit the default."""
    if offset > 0:
        details = sorted(details, key=lambda d: str(d.get("name", "")))[offset:]
    if limit <= 0:
        limit = DEFAULT_LIST_SIZE
    return details[:limit]


def _clean(obj: Any) -> Any:
    """`obj` with every string made valid Unicode (safe_text) and anything else JSON cannot
    hold turned into text: the last line of defence, so no client-chosen value can make a
    monitoring answer fail or carry lone surrogates."""
    if isinstance(obj, str):
        return obj if obj.isascii() else safe_text(obj)
    if isinstance(obj, dict):
        return {safe_text(k) if isinstance(k, str) else k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    return safe_text(obj)


def _dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2)


def _compact(obj: Any) -> str:
    return json.dumps(_clean(obj), separators=(",", ":"))


def _bad_request(text: str) -> web.Response:
    """A 400 with nats-server's plain-text message (it writes the error string as the body)."""
    return web.Response(status=400, text=safe_text(text))


# nats-server's DefaultConnListSize and DefaultSubListSize
DEFAULT_LIST_SIZE = 1024

# /connz sort option -> (ConnInfo field, descending?), as nats-server sorts (monitor_sort_opts.go):
# cid/start by cid, uptime shortest first (newest start first), reason ascending, the rest largest first
_CONNZ_SORT_KEYS: dict[str, tuple[str, bool]] = {
    "cid": ("cid", False), "start": ("cid", False), "subs": ("subscriptions", True),
    "pending": ("pending_bytes", True), "msgs_to": ("out_msgs", True), "msgs_from": ("in_msgs", True),
    "bytes_to": ("out_bytes", True), "bytes_from": ("in_bytes", True), "last": ("last_activity", True),
    "idle": ("last_activity", False), "uptime": ("start", True), "stop": ("stop", True),
    "reason": ("reason", False)}

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _go_quote(raw: str) -> str:
    """`raw` quoted for an error message, near enough to Go's strconv.Quote: printable text kept
    as it is, quotes and control characters escaped."""
    return json.dumps(safe_text(raw), ensure_ascii=False)


def _go_int(query: Any, name: str) -> int:
    """An integer query option as nats-server reads it (strconv.Atoi on 64 bits): absent or
    empty is 0; an optional sign and ASCII digits only (no spaces, underscores or other
    digits, which Python's int() would take); outside int64 is an error, not a clamp."""
    raw = query.get(name, "")
    if raw == "":
        return 0
    digits = raw[1:] if raw[0] in "+-" else raw
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"Error decoding int for '{name}': strconv.Atoi: parsing {_go_quote(raw)}: invalid syntax")
    val = int(raw)
    if not _INT64_MIN <= val <= _INT64_MAX:
        raise ValueError(f"Error decoding int for '{name}': strconv.Atoi: parsing {_go_quote(raw)}: "
                         "value out of range")
    return val


def _go_uint64(query: Any, name: str) -> int:
    """An unsigned query option as nats-server reads it (strconv.ParseUint base 10, 64 bits)."""
    raw = query.get(name, "")
    if raw == "":
        return 0
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"Error decoding uint64 for '{name}': strconv.ParseUint: parsing {_go_quote(raw)}: "
                         "invalid syntax")
    val = int(raw)
    if val >= 1 << 64:
        raise ValueError(f"Error decoding uint64 for '{name}': strconv.ParseUint: parsing {_go_quote(raw)}: "
                         "value out of range")
    return val


def _go_state(query: Any) -> str:
    """/connz ?state= as nats-server reads it: open (the default), closed, any or all."""
    raw = query.get("state", "")
    low = raw.lower()
    if low in ("", "open"):
        return "open"
    if low in ("closed", "any"):
        return low
    if low == "all":
        return "any"
    raise ValueError(f"Error decoding state for {raw}")


_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _go_bool(query: Any, name: str) -> bool:
    """A boolean query option as nats-server reads it (Go's ParseBool; absent or empty is false)."""
    raw = query.get(name, "")
    if raw == "" or raw in _GO_FALSE:
        return False
    if raw in _GO_TRUE:
        return True
    raise ValueError(f"Error decoding boolean for '{name}': strconv.ParseBool: parsing {_go_quote(raw)}: "
                     "invalid syntax")


# /jsz of a server without JetStream, as nats-server renders it
_JSZ_DISABLED: dict[str, Any] = {
    "disabled": True, "config": {"max_memory": 0, "max_storage": 0}, "memory": 0, "storage": 0,
    "reserved_memory": 0, "reserved_storage": 0, "accounts": 0, "ha_assets": 0,
    "api": {"total": 0, "errors": 0}, "streams": 0, "consumers": 0, "messages": 0, "bytes": 0}

# Stream config fields newer than nats-server 2.9.10, with the values that mean "not used":
# left out of /jsz at those values so the document has 2.9.10's shape; set, they are shown.
_NEWER_STREAM_FIELDS: dict[str, Any] = {"allow_msg_ttl": False, "compression": "none", "consumer_limits": {}}


def jsz_like_nats_server(doc: dict[str, Any], server_name: str, config: bool) -> dict[str, Any]:
    """Shape the JetStream manager's /jsz document as nats-server 2.9.10 does: every stream has
    a `cluster` with this server as leader, consumers carry their config only with ?config and
    no `ts`, and stream configs leave out unused fields 2.9.10 does not know."""
    doc = {k: v for k, v in doc.items() if k not in ("server_id", "now")}
    for acct in doc.get("account_details", ()):
        for i, sd in enumerate(acct.get("stream_detail", ())):
            if "cluster" not in sd:
                # after `created`, where nats-server puts it, for readers comparing the two
                items = list(sd.items())
                at = next((n + 1 for n, (k, _) in enumerate(items) if k == "created"), len(items))
                sd = acct["stream_detail"][i] = dict([*items[:at], ("cluster", {"leader": server_name}),
                                                      *items[at:]])
            cfg = sd.get("config")
            if isinstance(cfg, dict):
                for k, unused in _NEWER_STREAM_FIELDS.items():
                    if k in cfg and cfg[k] == unused:
                        del cfg[k]
            for cd in sd.get("consumer_detail", ()):
                cd.pop("ts", None)
                if not config:
                    cd.pop("config", None)
    return doc
