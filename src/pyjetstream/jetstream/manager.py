"""The JetStream manager: per-account JetStream state, streams by name, recovery at start.

Owns the JetStream object the server constructs (`JetStream(server, options)`), each
account's JsAccount (its streams, limits, API subscription), stream create/update/delete
with the checks that span streams (subject overlap, account limits), the stream-config
files next to each store, and stream advisories. Message handling is the Stream's; request
decoding is api.py's; message bytes on disk are the store's.

On disk (file storage only; memory streams do not survive a restart, as in nats-server)
each stream has the directory store/layout.py assigns; its `meta.json` holds this module's
{"config": StreamConfig JSON, "created": ns}, written and checksummed through layout's
write_meta/read_meta. All file IO goes through store/layout.py and the stores.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

# consumer_api is loaded with JetStream, not at the first consumer request: that import
# (compiling several modules where bytecode is not cached) would stall the loop mid-traffic.
from pyjetstream.jetstream import advisories, consumer_api, errors, router
from pyjetstream.jetstream.domain import DomainRoutes
from pyjetstream.jetstream.schemas import (
    JS_API_LEVEL,
    StreamByteLimits,
    StreamConfig,
    check_publish_targets,
    check_stream_config,
    check_update,
    set_static_metadata,
)
from pyjetstream.jetstream.seams import Account, AccountLimits, JetStreamSettings, MessageBus, Subscription
from pyjetstream.jetstream.store import layout
from pyjetstream.jetstream.store.base import StreamStore
from pyjetstream.jetstream.store.file import FileStore
from pyjetstream.jetstream.stream import Stream
from pyjetstream.subjects import subjects_overlap

log = logging.getLogger("pyjetstream.jetstream")

ASYNC_PERSIST_SYNC_INTERVAL = 120.0  # seconds: nats-server's default sync_interval
StoreFactory = Callable[[StreamConfig, str, "JetStream"], StreamStore]


def default_store_factory(cfg: StreamConfig, directory: str, js: JetStream) -> StreamStore:
    """Open the store for a stream: memory, or file under the stream's `directory`."""
    interval = js.sync_interval
    if cfg.persist_mode == "async" and not interval:
        # acknowledged before the fsync: the stream syncs on nats-server's default interval
        # even when the server syncs every write (nats-server turns sync_always off for it)
        interval = ASYNC_PERSIST_SYNC_INTERVAL
    opts: dict[str, str] = {"compression": cfg.compression} if cfg.storage == "file" else {}
    return layout.open_stream_store(cfg.storage, directory, sync_always=not interval,
                                    sync_interval_s=interval or None, first_seq=max(cfg.first_seq, 1), **opts)


class JsAccount:
    """One account's JetStream: its streams, limits and API subscription."""

    def __init__(self, js: JetStream, account: Account, limits: AccountLimits | None) -> None:
        self.js = js
        self.account = account
        self.limits = limits
        self.streams: dict[str, Stream] = {}
        self._api_sub: Subscription | None = None
        self._domain_routes: DomainRoutes | None = None

    @property
    def server(self) -> MessageBus:
        return self.js.server

    @property
    def name(self) -> str:
        return self.account.name

    def limit(self, attr: str) -> int:
        """The account's limit `attr` (max_mem, max_file, max_streams, max_consumers); -1: none."""
        if self.limits is None:
            return -1
        return int(getattr(self.limits, attr))

    def byte_limits(self) -> StreamByteLimits | None:
        """The account's max_bytes rules for its streams, None when it has none."""
        lim = self.limits
        if lim is None:
            return None
        return StreamByteLimits(lim.max_bytes_required, lim.memory_max_stream_bytes, lim.store_max_stream_bytes)

    def usage(self) -> tuple[int, int]:
        """(memory bytes, file bytes) stored by this account's streams."""
        mem = store = 0
        for s in self.streams.values():
            b = s.store.state().bytes
            if s.config.storage == "memory":
                mem += b
            else:
                store += b
        return mem, store

    def streams_dir(self) -> str:
        return os.path.dirname(layout.stream_dir(self.js.store_dir, self.name, "_"))

    def stream_dir(self, stream: str) -> str:
        return layout.stream_dir(self.js.store_dir, self.name, stream)

    def _on_api(self, sub: Any, client: Any, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> None:
        router.dispatch(self, subject, reply, hdr, payload, client)


class JetStream:
    """JetStream for one server; constructed by the server when JetStream is enabled."""

    def __init__(
        self,
        server: MessageBus,
        options: JetStreamSettings,
        store_factory: StoreFactory | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.server = server
        self.options = options
        self.store_dir = options.store_dir or os.path.join(os.getcwd(), "pyjetstream-data")
        self.sync_interval = options.sync_interval
        self.max_mem = options.max_mem
        self.max_file = options.max_file
        self.domain = options.domain
        # nats-server 2.12+: API request bodies with fields its request structs lack are refused
        self.strict = options.strict
        self.store_factory = store_factory or default_store_factory
        self.clock = clock
        self.accounts: dict[str, JsAccount] = {}
        self.api_total = 0
        self.api_errors = 0
        self.started = False
        self._disabled_subs: list[Subscription] = []

    # ------------------------------------------------------------------ lifecycle

    def enable_account(self, account: Account, limits: AccountLimits | None = None) -> JsAccount:
        name = account.name
        jsa = self.accounts.get(name)
        if jsa is not None:
            jsa.limits = limits if limits is not None else jsa.limits
            return jsa
        jsa = JsAccount(self, account, limits)
        self.accounts[name] = jsa
        if self.started:
            # it may have been answering 10039 until now
            for sub in [d for d in self._disabled_subs if d.account is account]:
                self.server.unsubscribe_internal(sub)
                self._disabled_subs.remove(sub)
            self._start_account(jsa)
        return jsa

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        if not self.accounts:
            self.enable_account(self.server.global_account, None)
        for jsa in list(self.accounts.values()):
            self._start_account(jsa)
        # Accounts without JetStream still answer API calls, with 10039, as nats-server does.
        for acc in list(self.server.accounts.values()):
            if acc.name not in self.accounts:
                self._disabled_subs.append(self.server.subscribe_internal(acc, "$JS.API.>", self._on_disabled_api,
                                                                              clients_only=True))
        log.info("JetStream started: store_dir=%s sync=%s", self.store_dir,
                 "always (group commit)" if self.sync_interval is None else f"every {self.sync_interval}s")

    def _start_account(self, jsa: JsAccount) -> None:
        self._recover_account(jsa)
        jsa._api_sub = self.server.subscribe_internal(jsa.account, "$JS.API.>", jsa._on_api, clients_only=True)
        if self.domain:
            jsa._domain_routes = DomainRoutes(jsa, self.domain)
            jsa._domain_routes.start(self.server, jsa.account)

    def _on_disabled_api(self, sub: Any, client: Any, subject: str, reply: str, hdr: bytes | None,
                         payload: bytes) -> None:
        router.dispatch_disabled(self.server, sub.account, subject, reply, errors.not_enabled_for_account())

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for sub in self._disabled_subs:
            self.server.unsubscribe_internal(sub)
        self._disabled_subs = []
        for jsa in self.accounts.values():
            if jsa._api_sub is not None:
                self.server.unsubscribe_internal(jsa._api_sub)
                jsa._api_sub = None
            if jsa._domain_routes is not None:
                jsa._domain_routes.stop(self.server)
                jsa._domain_routes = None
            for s in list(jsa.streams.values()):
                try:
                    s.stop(delete=False)
                except Exception:  # noqa: BLE001 - shutdown boundary: close every other stream regardless
                    log.exception("closing stream %s > %s failed", jsa.name, s.name)
            jsa.streams.clear()

    # ------------------------------------------------------------------ recovery

    def _recover_account(self, jsa: JsAccount) -> None:
        root = jsa.streams_dir()
        if not os.path.isdir(root):
            return
        for entry in sorted(os.listdir(root)):
            sdir = os.path.join(root, entry)
            try:
                raw = layout.read_meta(sdir)
                if raw is None:
                    continue
                meta = json.loads(raw)
                cfg = check_stream_config(StreamConfig.from_dict(meta["config"]))
                created = int(meta.get("created", 0))
            except (OSError, ValueError, KeyError, TypeError, errors.ApiError, layout.ErrCorruptMeta) as e:
                log.error("JetStream: stream %s > %s not recovered, bad metadata: %s", jsa.name, entry, e)
                continue
            t0 = time.monotonic()
            store = self.store_factory(cfg, sdir, self)
            stream = Stream(jsa, cfg, store, created, clock=self.clock)
            stream.directory = sdir
            jsa.streams[cfg.name] = stream
            stream.make_links()
            stream.apply_limits()
            stream.rebuild_dedupe()
            stream.subscribe()
            stream.start_timers(recovered=True)
            st = store.state()
            log.info("JetStream: restored stream %s > %s: %d msgs, %d bytes, seq %d..%d in %.3fs",
                     jsa.name, cfg.name, st.msgs, st.bytes, st.first_seq, st.last_seq, time.monotonic() - t0)
            if st.lost is not None and (st.lost.msgs or st.lost.bytes):
                log.warning("JetStream: stream %s > %s lost %d msgs (%d bytes) in recovery",
                            jsa.name, cfg.name, len(st.lost.msgs), st.lost.bytes)
            self._recover_consumers(stream)
        self._link_sources(jsa)

    def _link_sources(self, jsa: JsAccount) -> None:
        """Attach every mirror/source link whose origin stream exists (now)."""
        for stream in jsa.streams.values():
            for link in stream.links:
                origin = jsa.streams.get(link.name)
                if origin is not None and link.origin is not origin:
                    link.attach(origin)

    def _check_cycles(self, jsa: JsAccount, cfg: StreamConfig) -> None:
        def origins(c: StreamConfig) -> list[str]:
            if c.mirror:
                return [c.mirror["name"]]
            return [s["name"] for s in c.sources or ()]

        todo, seen = origins(cfg), set()
        while todo:
            name = todo.pop()
            if name == cfg.name:
                raise errors.stream_invalid_config(err="detected cycle")
            if name in seen or name not in jsa.streams:
                continue
            seen.add(name)
            todo.extend(origins(jsa.streams[name].config))

    def _recover_consumers(self, stream: Stream) -> None:
        consumer_api.recover_consumers(stream)

    def _write_meta(self, jsa: JsAccount, stream: Stream) -> None:
        if stream.config.storage != "file":
            return
        data = json.dumps({"config": stream.config.to_dict(), "created": stream.created}).encode()
        layout.write_meta(stream.directory, data)

    # ------------------------------------------------------------------ stream operations

    def _check_overlap(self, jsa: JsAccount, cfg: StreamConfig) -> None:
        for other in jsa.streams.values():
            if other.name == cfg.name:
                continue
            for a in cfg.subjects:
                for b in other.config.subjects:
                    if subjects_overlap(a, b):
                        raise errors.stream_subject_overlap()

    def add_stream(self, jsa: JsAccount, req_cfg: StreamConfig, pedantic: bool = False) -> tuple[Stream, bool]:
        """Create a stream (or return the existing one with an identical config). `pedantic`:
        the request's flag (schemas.check_stream_config)."""
        cfg = check_stream_config(req_cfg, jsa.byte_limits(), pedantic)
        self._check_pedantic_mirror(jsa, cfg, pedantic)
        check_publish_targets(cfg)
        set_static_metadata(cfg)
        existing = jsa.streams.get(cfg.name)
        if existing is not None:
            if existing.config.to_dict() == cfg.to_dict():
                return existing, False
            raise errors.stream_name_exist()
        if cfg.num_replicas > 1:
            raise errors.stream_replicas_not_supported()
        if cfg.sealed:
            raise errors.stream_invalid_config(err="stream configuration for create can not be sealed")
        max_streams = jsa.limit("max_streams")
        if max_streams >= 0 and len(jsa.streams) >= max_streams:
            raise errors.maximum_streams_limit()
        self._check_overlap(jsa, cfg)
        self._check_storage_limits(jsa, cfg)
        self._check_cycles(jsa, cfg)
        if cfg.storage == "file" and "\x00" in cfg.name:
            # what nats-server answers when the file system refuses such a directory name
            raise errors.stream_create(err="error creating store for stream")
        sdir = jsa.stream_dir(cfg.name)
        if cfg.storage == "file":
            # a leftover directory from a stream deleted while we crashed must not leak in
            layout.remove_dir(sdir)
            layout.make_dirs(sdir)
        try:
            store = self.store_factory(cfg, sdir, self)
        except (OSError, ValueError) as e:
            raise errors.stream_create(err=str(e)) from e
        stream = Stream(jsa, cfg, store, self.clock(), clock=self.clock)
        stream.directory = sdir
        try:
            self._write_meta(jsa, stream)
        except OSError as e:
            store.delete()
            raise errors.stream_create(err=str(e)) from e
        jsa.streams[cfg.name] = stream
        stream.subscribe()
        stream.start_timers()
        stream.make_links()
        self._link_sources(jsa)
        advisories.stream_action(self.server, jsa.account, cfg.name, "create", domain=self.domain)
        return stream, True

    def _check_storage_limits(self, jsa: JsAccount, cfg: StreamConfig) -> None:
        # Reservations as nats-server makes them: a stream's max_bytes counts against the
        # account's (and the server's) limit for its storage type when both are set.
        acct_max = jsa.limit("max_mem" if cfg.storage == "memory" else "max_file")
        server_max = self.max_mem if cfg.storage == "memory" else self.max_file
        if cfg.max_bytes <= 0:
            return
        reserved = sum(s.config.max_bytes for s in jsa.streams.values()
                       if s.config.storage == cfg.storage and s.config.max_bytes > 0 and s.name != cfg.name)
        for limit in (acct_max, server_max):
            if limit is not None and limit >= 0 and reserved + cfg.max_bytes > limit:
                if cfg.storage == "memory":
                    raise errors.memory_resources_exceeded()
                raise errors.storage_resources_exceeded()

    def _check_pedantic_mirror(self, jsa: JsAccount, cfg: StreamConfig, pedantic: bool) -> None:
        # nats-server gives a mirror its origin's allow_direct as mirror_direct; pedantic mode
        # refuses a request that asks otherwise (we do not copy it: docs/compat.md)
        origin = jsa.streams.get(cfg.mirror["name"]) if pedantic and cfg.mirror else None
        if origin is not None and cfg.mirror_direct != origin.config.allow_direct:
            raise errors.by_constant("JSPedanticErrF", err="origin stream has direct get set, mirror has it disabled")

    def update_stream(self, jsa: JsAccount, req_cfg: StreamConfig, pedantic: bool = False) -> Stream:
        stream = jsa.streams.get(req_cfg.name)
        if stream is None:
            raise errors.stream_not_found()
        cfg = check_update(stream.config, req_cfg, jsa.byte_limits(), pedantic)
        self._check_pedantic_mirror(jsa, cfg, pedantic)
        set_static_metadata(cfg)
        self._check_overlap(jsa, cfg)
        self._check_storage_limits(jsa, cfg)
        self._check_cycles(jsa, cfg)
        old_sources, old_mirror = stream.config.sources, stream.config.mirror
        stream.update_config(cfg)
        if isinstance(stream.store, FileStore):
            stream.store.set_compression(cfg.compression)
        if cfg.sources != old_sources or cfg.mirror != old_mirror:
            stream.make_links()
            self._link_sources(jsa)
        self._write_meta(jsa, stream)
        advisories.stream_action(self.server, jsa.account, cfg.name, "modify", domain=self.domain)
        return stream

    def delete_stream(self, jsa: JsAccount, name: str) -> None:
        stream = jsa.streams.pop(name, None)
        if stream is None:
            raise errors.stream_not_found()
        stream.stop(delete=True)
        if stream.config.storage == "file":
            layout.remove_dir(stream.directory)
        advisories.stream_action(self.server, jsa.account, name, "delete", domain=self.domain)

    # ------------------------------------------------------------------ monitoring (/varz, /jsz)

    def config_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"max_memory": self.max_mem, "max_storage": self.max_file,
                               "store_dir": os.path.join(self.store_dir, "jetstream")}
        if self.domain:
            doc["domain"] = self.domain
        if self.sync_interval is None:
            doc["sync_always"] = True
        else:
            doc["sync_interval"] = int(self.sync_interval * 1_000_000_000)
        if self.strict:
            doc["strict"] = True  # as nats-server 2.12 shows it (omitted when off)
        return doc

    def stats(self) -> dict[str, Any]:
        """nats-server's JetStreamStats over every JetStream account."""
        mem = store = 0
        for jsa in self.accounts.values():
            m, f = jsa.usage()
            mem, store = mem + m, store + f
        return {"memory": mem, "storage": store, "reserved_memory": 0, "reserved_storage": 0,
                "accounts": len(self.accounts), "ha_assets": 0,
                "api": {"level": JS_API_LEVEL, "total": self.api_total, "errors": self.api_errors}}

    def varz(self) -> dict[str, Any]:
        """The "jetstream" object of /varz."""
        return {"config": self.config_doc(), "stats": self.stats()}

    def jsz(self, streams: bool = False, consumers: bool = False, config: bool = False,
            accounts: bool = False, acc: str = "") -> dict[str, Any]:
        """/jsz with nats-server's field names (server_id and now are the caller's)."""
        doc: dict[str, Any] = {"config": self.config_doc(), **self.stats()}
        n_streams = n_consumers = n_msgs = n_bytes = 0
        for jsa in self.accounts.values():
            for s in jsa.streams.values():
                st = s.store.state()
                n_streams += 1
                n_consumers += len(s.consumers)
                n_msgs += st.msgs
                n_bytes += st.bytes
        doc.update(streams=n_streams, consumers=n_consumers, messages=n_msgs, bytes=n_bytes)
        if accounts or streams or consumers or acc:
            details = []
            for jsa in self.accounts.values():
                if acc and jsa.name != acc:
                    continue
                m, f = jsa.usage()
                d: dict[str, Any] = {"name": jsa.name, "id": jsa.name, "memory": m, "storage": f,
                                     "reserved_memory": 0, "reserved_storage": 0, "accounts": 0, "ha_assets": 0,
                                     "api": {"total": self.api_total, "errors": self.api_errors}}
                if streams or consumers:
                    sd = []
                    for s in sorted(jsa.streams.values(), key=lambda x: x.name):
                        info = s.info()
                        item: dict[str, Any] = {"name": s.name, "created": info["created"]}
                        if config:
                            # the stored config, as nats-server 2.12's /jsz: no server version
                            # and level in its metadata (those ride in API answers only)
                            item["config"] = s.config.to_dict()
                        item["state"] = info["state"]
                        if consumers and s.consumers:
                            item["consumer_detail"] = [c.info() for c in s.consumers.values()]
                        for k in ("mirror", "sources"):
                            if k in info:
                                item[k] = info[k]
                        sd.append(item)
                    if sd:
                        d["stream_detail"] = sd
                details.append(d)
            if details:
                doc["account_details"] = details
        return doc
