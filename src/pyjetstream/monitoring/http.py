"""HTTP monitoring endpoints with nats-server's field names: /varz, /connz, /subsz, /healthz,
/jsz, plus Prometheus /metrics.

Owns only the rendering of server state into these documents and the aiohttp app serving
them. Reads server, client and JetStream state; never changes it. Other components add
Prometheus collectors through `pyjetstream.monitoring.metrics`.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from pyjetstream.server.client import ClientConnection
    from pyjetstream.server.server import Server


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
    def __init__(self, server: Server, closed_keep: int = 10000) -> None:
        self.server = server
        self.closed: deque[dict[str, Any]] = deque(maxlen=closed_keep)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.host = ""
        self.app = web.Application()
        r = self.app.router
        r.add_get("/", self.root)
        r.add_get("/varz", self.varz)
        r.add_get("/connz", self.connz)
        r.add_get("/subsz", self.subsz)
        r.add_get("/subscriptionsz", self.subsz)
        r.add_get("/healthz", self.healthz)
        r.add_get("/jsz", self.jsz)
        r.add_get("/metrics", self.metrics)
        self.http_req_stats: dict[str, int] = {}
        # Prometheus collectors other components of this process add (metrics.add_collector)
        self.collectors: list[Any] = []
        self.started_cpu = time.process_time()

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port if port > 0 else 0, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1] if sockets else port
        self.host = host
        import logging

        logging.getLogger("pyjetstream.server").info("Starting http monitor on %s:%d", host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def record_closed(self, c: ClientConnection, reason: str) -> None:
        # keep the auth fields; connz drops them unless asked for with ?auth=1
        info = self.conn_info(c, time.time(), subs="", auth=True)
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
            "proto": 1, "go": f"python{os.sys.version_info.major}.{os.sys.version_info.minor}",
            "host": o.host, "port": s.port,
            "max_connections": 65536, "ping_interval": int(o.ping_interval * 1e9), "ping_max": o.ping_max,
            "http_host": self.host, "http_port": self.port, "http_base_path": "", "https_port": 0,
            "auth_timeout": o.auth_timeout, "max_control_line": o.max_control_line,
            "max_payload": o.max_payload, "max_pending": o.max_pending, "tls_timeout": 2,
            "write_deadline": int(o.write_deadline * 1e9), "start": rfc3339(s.start_time), "now": rfc3339(now),
            "uptime": go_duration(now - s.start_time), "mem": _rss_bytes(), "cores": os.cpu_count() or 1,
            "gomaxprocs": 1, "cpu": round(100 * (time.process_time() - self.started_cpu) / max(now - s.start_time, 1e-9), 2),
            "connections": len(s.clients), "total_connections": s.total_connections, "routes": 0,
            "remotes": 0, "leafnodes": 0, "in_msgs": totals["in_msgs"], "out_msgs": totals["out_msgs"],
            "in_bytes": totals["in_bytes"], "out_bytes": totals["out_bytes"], "slow_consumers": s.slow_consumers,
            "subscriptions": sum(a.sublist.count for a in s.accounts.values()),
            "http_req_stats": dict(self.http_req_stats), "config_load_time": rfc3339(s.start_time),
            "system_account": "$SYS",
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
            doc["jetstream"] = s.jetstream.varz() if hasattr(s.jetstream, "varz") else self._js_varz()
        return doc

    def _js_varz(self) -> dict[str, Any]:
        """/varz "jetstream" from what the JetStream manager exposes, until it renders its own."""
        js = self.server.jetstream
        o = self.server.opts.jetstream
        mem = store = 0
        accounts = getattr(js, "accounts", {}) or {}
        for jsa in accounts.values():
            if hasattr(jsa, "usage"):
                m, f = jsa.usage()
                mem, store = mem + m, store + f
        return {
            "config": {"max_memory": o.max_mem, "max_storage": o.max_file,
                       "store_dir": getattr(js, "store_dir", o.store_dir)},
            "stats": {"memory": mem, "storage": store, "reserved_memory": 0, "reserved_storage": 0,
                      "accounts": len(accounts), "ha_assets": 0,
                      "api": {"total": getattr(js, "api_total", 0), "errors": getattr(js, "api_errors", 0)}},
        }

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
        if c.name:
            info["name"] = c.name
        if c.lang:
            info["lang"] = c.lang
        if c.version:
            info["version"] = c.version
        if c.tls_version:
            info["tls_version"] = c.tls_version
        if auth:
            if c.user:
                info["authorized_user"] = c.user
            if c.account.name != "$G":
                info["account"] = c.account.name
        if subs == "list" and c.subs:
            info["subscriptions_list"] = [s.subject for s in c.subs.values()]
        elif subs == "detail" and c.subs:
            info["subscriptions_list_detail"] = [
                {"subject": s.subject, **({"qgroup": s.queue} if s.queue else {}), "sid": s.sid.decode(),
                 "msgs": s.delivered, "cid": c.cid} for s in c.subs.values()]
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
        try:
            offset = int(q.get("offset", 0))
            limit = int(q.get("limit", 1024))
        except ValueError:
            return web.json_response({"error": "invalid offset or limit"}, status=400)
        subs_q = q.get("subs", "")
        subs = "detail" if subs_q == "detail" else "list" if subs_q in ("1", "true") else ""
        auth = q.get("auth", "") in ("1", "true")
        state = q.get("state", "open")
        sort = q.get("sort", "cid")
        now = time.time()
        closed = list(self.closed) if auth else [
            {k: v for k, v in ci.items() if k not in ("authorized_user", "account")} for ci in self.closed]
        if state == "closed":
            conns = closed
        else:
            conns = [self.conn_info(c, now, subs, auth) for c in self.server.clients.values()]
            if state == "any":
                conns += closed
        keys = {"cid": "cid", "start": "start", "subs": "subscriptions", "pending": "pending_bytes",
                "msgs_to": "out_msgs", "msgs_from": "in_msgs", "bytes_to": "out_bytes",
                "bytes_from": "in_bytes", "last": "last_activity", "idle": "last_activity", "uptime": "start",
                "stop": "stop", "reason": "reason"}
        if sort not in keys:
            return web.json_response({"error": f"invalid sorting option: {sort}"}, status=400)
        reverse = sort not in ("cid", "start", "uptime", "idle")
        conns.sort(key=lambda x: x.get(keys[sort], 0), reverse=reverse)
        page = conns[offset:offset + limit]
        doc = {"server_id": self.server.server_id, "now": rfc3339(now), "num_connections": len(page),
               "total": len(conns), "offset": offset, "limit": limit, "connections": page}
        return web.json_response(doc, dumps=_dumps)

    async def subsz(self, request: web.Request) -> web.Response:
        self._count("/subsz")
        s = self.server
        total = sum(a.sublist.count for a in s.accounts.values())
        doc: dict[str, Any] = {"server_id": s.server_id, "now": rfc3339(time.time()), "num_subscriptions": total,
                               "num_cache": 0, "num_inserts": 0, "num_removes": 0, "num_matches": 0,
                               "cache_hit_rate": 0, "max_fanout": 0, "avg_fanout": 0}
        for a in s.accounts.values():
            st = a.sublist.stats()
            doc["num_cache"] += st.get("cache_size", 0)
            doc["num_inserts"] += st.get("inserts", 0)
            doc["num_removes"] += st.get("removes", 0)
            doc["num_matches"] += st.get("matches", 0)
        if doc["num_matches"]:
            hits = sum(a.sublist.stats().get("cache_hits", 0) for a in s.accounts.values())
            doc["cache_hit_rate"] = hits / doc["num_matches"]
        if request.query.get("subs", "") in ("1", "true"):
            doc["subscriptions_list"] = [
                {"account": a.name, "subject": sub.subject, "sid": sub.sid.decode(), "msgs": sub.delivered,
                 "cid": sub.client.cid if sub.client else 0, **({"qgroup": sub.queue} if sub.queue else {})}
                for a in s.accounts.values() for sub in a.sublist.all_subscriptions() if sub.client is not None]
        return web.json_response(doc, dumps=_dumps)

    async def healthz(self, request: web.Request) -> web.Response:
        self._count("/healthz")
        try:
            _go_bool(request.query, "js-enabled-only")
            _go_bool(request.query, "js-enabled")
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))
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
            streams, consumers, config, accounts = (
                _go_bool(q, k) for k in ("streams", "consumers", "config", "accounts"))
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))
        head = {"server_id": self.server.server_id, "now": rfc3339(time.time())}
        js = self.server.jetstream
        if js is None or not hasattr(js, "jsz"):
            return web.json_response({**head, **_JSZ_DISABLED}, dumps=_dumps)
        acc = q.get("acc", "")
        # nats-server: `acc` naming a JetStream account narrows the details to it (and asks for
        # them); any other name is ignored, so the details list every account when asked for.
        if acc not in getattr(js, "accounts", {}):
            acc = ""
        doc = js.jsz(streams=streams, consumers=consumers, config=config, accounts=accounts, acc=acc)
        return web.json_response({**head, **jsz_like_nats_server(doc, self.server.server_name, config)},
                                 dumps=_dumps)

    async def metrics(self, request: web.Request) -> web.Response:
        self._count("/metrics")
        from pyjetstream.monitoring.metrics import render_metrics

        body, ctype = render_metrics(self.server, list(self.collectors))
        return web.Response(body=body, headers={"Content-Type": ctype})


def _version() -> str:
    from pyjetstream.server.server import VERSION

    return VERSION


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2)


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _go_bool(query: Any, name: str) -> bool:
    """A boolean query option as nats-server reads it (Go's ParseBool; absent or empty is false)."""
    raw = query.get(name, "")
    if raw == "" or raw in _GO_FALSE:
        return False
    if raw in _GO_TRUE:
        return True
    raise ValueError(f"Error decoding boolean for '{name}': strconv.ParseBool: parsing {json.dumps(raw)}: "
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
