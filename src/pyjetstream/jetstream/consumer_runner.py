"""The asyncio shell around one consumer state machine.

Owns the consumer's wiring to the world: its ack and flow-control subscriptions, ONE timer
re-armed to the state machine's earliest deadline, coalesced wake-ups (every event marks the
consumer runnable; one call_soon drains them), publishing what the machine emits, telling the
stream about acks (interest/workqueue retention), persisting state through the ConsumerStore,
and self-deletion after the inactivity threshold. It holds no delivery state of its own: that
lives in consumer.Consumer, and messages are read only through the stream's store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyjetstream.gotime import format_rfc3339
from pyjetstream.jetstream import advisories
from pyjetstream.jetstream.consumer import ACK_TOKEN_STREAM_SEQ, Consumer, Delivery
from pyjetstream.jetstream.consumer_config import ConsumerConfig, set_static_metadata
from pyjetstream.jetstream.seams import ConsumerStore, Subscription
from pyjetstream.jetstream.store.base import ConsumerState
from pyjetstream.jetstream.store.memory import MemoryConsumerStore

if TYPE_CHECKING:  # the stream module does not import this one: no cycle at run time either
    from pyjetstream.jetstream.stream import Stream

log = logging.getLogger(__name__)

BATCH = 256  # deliveries per wake-up before yielding to the loop
# A paused push consumer looks for a subscriber after 1 ms, then ever less often up to 250 ms:
# clients usually subscribe to the deliver subject right after creating the consumer.
INTEREST_RECHECK_MIN_NS = 1_000_000
INTEREST_RECHECK_NS = 250_000_000
ACTIVE_RECHECK_NS = 1_000_000_000  # one that may be cleaned up checks its subscriber is still there


class Clock:
    """Monotonic ns for deadlines (the loop's clock) and wall ns for timestamps."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> int:
        return int(self.loop.time() * 1e9)

    def wall(self) -> int:
        return time.time_ns()


class ConsumerRunner:
    """A live consumer attached to its stream. The stream calls the on_* hooks."""

    def __init__(
        self,
        stream: Stream,
        name: str,
        config: ConsumerConfig,
        *,
        cstore: ConsumerStore | None = None,
        created: int = 0,
        state: ConsumerState | None = None,
        clock: Clock | None = None,
        on_deleted: Callable[[ConsumerRunner], None] | None = None,
    ) -> None:
        self.stream = stream
        self.name = name
        self.jsa = stream.jsa
        self.server = self.jsa.server
        self.account = self.jsa.account
        self.loop = asyncio.get_running_loop()
        self.clock = clock or Clock(self.loop)
        # a consumer whose state does not outlive the process still has a store, in memory
        self.cstore: ConsumerStore = cstore if cstore is not None else MemoryConsumerStore()
        self.created = created or time.time_ns()
        self.on_deleted = on_deleted
        now = self.clock.now()
        self.core = Consumer(
            stream.name, name, config, stream.store, now,
            wall_offset=self.clock.wall() - now,
            retention=stream.config.retention,
            stream_subjects=self._shortcut_subjects(),
            has_interest=self._has_interest,
            state=state,
            account_name=str(getattr(self.account, "name", "") or ""),
            # nats-server keeps a file consumer store for every consumer of a file stream
            # (ephemerals too) unless mem_storage asks otherwise; it decides what info reports
            # before the first delivery
            file_state=getattr(stream.config, "storage", "") == "file" and not config.mem_storage,
        )
        self._stream_cfg = stream.config  # the config whose subjects the core was given
        self._scheduled = False
        self._recheck = INTEREST_RECHECK_MIN_NS
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0
        self._subs: list[Subscription] = []
        self._acks: list[tuple[str, bytes, bytes]] = []  # queued by _on_ack_raw
        self._watched: str | None = None  # the deliver subject whose new subscribers kick us
        self.closed = False
        prefix = f"{stream.name}.{name}"
        self._subs.append(self.server.subscribe_internal(self.account, f"$JS.ACK.{prefix}.>", self._on_ack_raw,
                                                         raw=True, clients_only=True))
        if config.flow_control:
            self._subs.append(self.server.subscribe_internal(self.account, f"$JS.FC.{prefix}.>", self._on_fc_msg,
                                                             clients_only=True))
        if config.deliver_subject:
            self.core.set_interest(self._has_interest(config.deliver_subject), now)
        self._watch_if_idle()
        self._save_config(config)
        self._persist()
        self.kick()

    # ------------------------------------------------------------------ seam for the stream
    @property
    def config(self) -> ConsumerConfig:
        return self.core.cfg

    def matches(self, subject: str) -> bool:
        return self.core.matches(subject)

    def on_new_msg(self, seq: int, subject: str) -> None:
        if self._acks:
            self._take_acks()
        core = self.core
        core.on_new_msg(seq, subject, 0)
        # Nothing to do for a pull consumer nobody waits on, or a push consumer nobody hears
        # (a subscriber that arrived since is noticed here rather than at the next re-check).
        if core.is_push:
            if core.active or self._has_interest(core.cfg.deliver_subject):
                self.kick()
        elif core.waiting:
            self.kick()

    def on_msgs_removed(self, first_seq: int) -> None:
        self._take_acks()
        self.core.on_msgs_removed(first_seq, self.clock.now())
        self.kick()

    def on_purged(self, first_seq: int) -> None:
        self._take_acks()
        self.core.on_purged(first_seq, self.clock.now())
        self.kick()

    def needs_ack(self, seq: int, subject: str) -> bool:
        if self._acks:
            self._take_acks()
        return self.core.needs_ack(seq, subject)

    def info(self, num_pending: int | None = None) -> dict[str, Any]:
        """ConsumerInfo; `num_pending` when the caller counted it already (in slices)."""
        self._take_acks()
        now = self.clock.now()
        if self.core.is_push:
            # push_bound reflects the subscription as it is now, not at the last delivery
            was = self.core.active
            self.core.set_interest(self._has_interest(self.core.cfg.deliver_subject), now)
            if self.core.active != was:
                # resume delivery, or arm the clean-up and interest re-check timers
                self.kick()
        out: dict[str, Any] = {
            "stream_name": self.stream.name,
            "name": self.name,
            "created": format_rfc3339(self.created),
            "config": self.core.cfg.to_json(),
        }
        out.update(self.core.info_state(now, num_pending))
        out["ts"] = format_rfc3339(self.clock.wall())
        groups = self.core.priority_state()
        if groups is not None:
            out["priority_groups"] = groups  # after ts, in nats-server's field order
        self._flush()
        return out

    def stop(self, delete: bool = False) -> None:
        """Stop for good: unsubscribe, cancel the timer, close or delete the state store."""
        if self.closed:
            return
        self._take_acks()
        self.core.stop(delete, self.clock.now())
        self._flush()
        self.closed = True
        self._watch(None)
        for sub in self._subs:
            self.server.unsubscribe_internal(sub)
        self._subs = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if delete:
            self.cstore.delete()
        else:
            self._persist()
            # Write the final state inline: a write still queued for the store's writer
            # thread could land after a restart has already read the old state.
            self.cstore.flush()
            self.cstore.close()

    # ------------------------------------------------------------------ inbound
    def on_pull_request(self, reply: str, payload: bytes) -> None:
        if self.closed:
            return
        self._take_acks()
        self.core.on_pull_request(reply, payload, self.clock.now())
        self.kick()

    def update_config(self, cfg: ConsumerConfig) -> None:
        self._take_acks()
        old = self.core.cfg
        self.core.update_config(cfg, self.clock.now())
        if cfg.flow_control and not old.flow_control:
            self._subs.append(self.server.subscribe_internal(
                self.account, f"$JS.FC.{self.stream.name}.{self.name}.>", self._on_fc_msg, clients_only=True))
        if cfg.deliver_subject:
            self.core.set_interest(self._has_interest(cfg.deliver_subject), self.clock.now())
        self._watch_if_idle()
        self._save_config(cfg)
        self.kick()

    def unpin(self, group: str) -> None:
        self._take_acks()
        self.core.unpin(group, self.clock.now())
        self.kick()

    def announce_pause(self) -> None:
        self.core.announce_pause(self.clock.now())
        self.kick()

    def pause(self, pause_until: str | None) -> tuple[bool, int]:
        """Set or lift (None) the pause deadline, as `$JS.API.CONSUMER.PAUSE` does: a config
        update (persisted, advisory). Returns (paused now, ns remaining)."""
        cfg = self.core.cfg.copy()
        cfg.pause_until = pause_until
        set_static_metadata(cfg)  # the required level follows the pause, as in nats-server
        self.update_config(cfg)
        now = self.clock.now()
        core = self.core
        return (True, core.pause_at - now) if core.is_paused(now) else (False, 0)

    def _on_ack_raw(self, subject: str, reply_b: bytes, hdr_len: int, body: bytes) -> None:
        # Once per ack, so it only queues: the state machine takes the queue in one call at
        # the next run, or before anything else reads or changes it (_take_acks).
        if self.closed:
            return
        if not self._acks:
            self.kick()
        self._acks.append((subject, reply_b, body[hdr_len:-2]))

    def _take_acks(self) -> None:
        """Hand queued acks to the state machine: every entry point calls this first, so the
        machine sees acks and other events in the order they arrived."""
        acks = self._acks
        if acks:
            self._acks = []
            self.core.on_acks(acks, self.clock.now())

    def _on_fc_msg(self, sub: Any, client: Any, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> None:
        if self.closed:
            return
        self._take_acks()
        self.core.on_flow_control_reply(subject, self.clock.now())
        self.kick()

    def _has_interest(self, subject: str) -> bool:
        return self.server.has_interest(self.account, subject)

    def _watch_if_idle(self) -> None:
        """Watch the deliver subject while a push consumer has no subscriber, and only then:
        a wildcard SUB costs a match per watcher."""
        core = self.core
        idle = core.is_push and not core.active and core.cfg.deliver_subject
        self._watch(core.cfg.deliver_subject if idle else None)

    def _watch(self, subject: str | None) -> None:
        """Be kicked when a subscriber for `subject` (None: nothing) arrives. Clients create a
        push consumer before they subscribe to its deliver subject; the re-check timer backs off
        to 250 ms, so without this the first deliveries could wait that long after the SUB
        (nats-server is told of new interest at once, too)."""
        if subject == self._watched:
            return
        if self._watched is not None:
            self.server.unwatch_interest(self.account, self._watched, self.kick)
        self._watched = subject
        if subject is not None:
            self.server.watch_interest(self.account, subject, self.kick)

    def _shortcut_subjects(self) -> list[str]:
        """The subjects a filter may be compared with to treat it as no filter: none when the
        stream also stores other subjects (sources, a mirror, a subject transform)."""
        stream = self.stream
        if not stream.subjects_exhaustive:
            return []
        return list(stream.config.subjects or [])

    # ------------------------------------------------------------------ the run loop
    def kick(self) -> None:
        """Mark runnable; many events in one loop iteration share one run."""
        if not self._scheduled and not self.closed:
            self._scheduled = True
            self.loop.call_soon(self._run)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = 0
        self._run()

    def _run(self) -> None:
        self._scheduled = False
        if self.closed:
            return
        try:
            core = self.core
            self._take_acks()
            now = self.clock.now()
            if self.stream.config is not self._stream_cfg:
                # a stream update replaces its config object: look at the subjects again
                self._stream_cfg = self.stream.config
                subjects = self._shortcut_subjects()
                if subjects != core.stream_subjects:
                    core.set_stream_subjects(subjects)
            if core.is_push:
                interest = self._has_interest(core.cfg.deliver_subject)
                if interest != core.active:
                    core.set_interest(interest, now)
                if interest:
                    self._recheck = INTEREST_RECHECK_MIN_NS
            n = core.poll(now, BATCH)
            self._flush()
            if core.is_push and core.active == (self._watched is not None):
                self._watch_if_idle()  # interest came or went (here, in info(), or a delivery nobody took)
            self._persist()
            if core.delete_requested:
                self._delete_inactive()
                return
            if n >= BATCH:
                self.kick()
            self._arm(now)
        except Exception:  # noqa: BLE001 - the consumer task boundary: log, keep the server alive
            log.exception("consumer %s > %s failed", self.stream.name, self.name)

    def _arm(self, now: int) -> None:
        core = self.core
        at = core.next_deadline()
        if core.is_push and (not core.active or core.cfg.inactive_threshold > 0):
            # No interest notifications from the server: look again soon, both for a returning
            # subscriber and for one that left (which starts the inactivity clean-up).
            if core.active:
                recheck = now + ACTIVE_RECHECK_NS
            else:
                recheck = now + self._recheck
                self._recheck = min(self._recheck * 2, INTEREST_RECHECK_NS)
            at = recheck if at is None else min(at, recheck)
        if at is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._timer_at = 0
            return
        if self._timer is not None:
            if self._timer_at <= at:
                # An earlier wake-up is already armed; it re-arms for whatever is due next.
                # Re-arming on every run would cost a timer handle per delivery.
                return
            self._timer.cancel()
        self._timer_at = at
        # relative to the injected clock, so a test clock never fires the loop's timer early
        self._timer = self.loop.call_later(max(0.0, (at - now) / 1e9), self._on_timer)

    def _flush(self) -> None:
        """Publish what the state machine emitted, in order."""
        core = self.core
        out, adv, acks = core.take_outputs()
        if out:
            server = self.server
            publish = server.publish
            route = server.route
            account = self.account
            # A pull request's reply subject is its requester's choice, like any reply: what goes
            # there reaches client subscriptions only (as Server.respond), so no stream stores
            # it where the requester may not publish (nats-server 2.9 stores it).
            internal = core.is_push
            now = 0
            last_dest = None
            direct = None
            for item in out:
                if type(item) is Delivery:
                    dest, reply, hdr, payload, subject = item
                    if dest != last_dest:
                        last_dest = dest
                        direct = server.sole_subscriber(account, dest)
                    if direct is not None and reply:
                        client = direct.client
                        if client is not None and not client.closed:
                            # one subscriber: framed straight into its connection
                            client.deliver_stored(direct, subject, reply, hdr, payload)
                            direct.delivered += 1
                            continue
                    # Routed by the deliver (or pull reply) subject while the client sees the
                    # message's own subject, as nats-server delivers JetStream messages.
                    if hdr:
                        body = hdr + payload + b"\r\n"
                        hlen = len(hdr)
                    else:
                        body = payload + b"\r\n"
                        hlen = 0
                    got = route(account, dest, subject.encode(), reply.encode(), hlen,
                                b"%d" % (len(body) - 2), body, None, internal)
                    if got == 0:
                        if not now:
                            now = self.clock.now()
                        core.did_not_deliver(int(reply.split(".")[ACK_TOKEN_STREAM_SEQ]), now)
                elif internal:
                    publish(account, item.dest, item.reply, item.hdr, item.payload)
                else:
                    server.respond(account, item.dest, item.hdr, item.payload)
            # a failed delivery may have queued a redelivery or status
            if core.outbox:
                self.kick()
        replies = core.take_ack_replies()
        if adv:
            wall = self.clock.wall()
            for a in adv:
                advisories.send(self.server, self.account, a, wall, self.stream.jsa.js.domain)
        if acks:
            ack_msg = self.stream.ack_msg
            for seq in acks:
                ack_msg(seq, self)
        if replies:
            # after ack_msg: the removals those acks caused are among what must be durable
            self._reply_when_durable(replies)

    def _reply_when_durable(self, replies: list[str]) -> None:
        """An ack-sync reply promises the ack survives a crash: send it once the consumer's
        state is durable and, on interest/workqueue streams, the removal the ack caused too."""
        self._persist()
        waits: list[Callable[[Callable[[], None]], None]] = [self.cstore.commit]
        if self.stream.config.retention != "limits":
            waits.append(self.stream.after_durable)
        left = len(waits)

        def one_done() -> None:
            nonlocal left
            left -= 1
            if left == 0:
                self._send_ack_replies(replies)

        # both commits run at once; the replies go out when the later one is done
        for wait in waits:
            wait(one_done)

    def _send_ack_replies(self, replies: list[str]) -> None:
        respond = self.server.respond
        for r in replies:
            respond(self.account, r, None, b"")

    def _save_config(self, cfg: ConsumerConfig) -> None:
        doc = {"config": cfg.to_json(), "created": self.created}
        self.cstore.update_config(json.dumps(doc).encode())

    def _persist(self) -> None:
        core = self.core
        if core.dirty:
            # the snapshot is taken when the store writes, not on every loop pass
            self.cstore.update(core.snapshot)
        core.dirty = False

    def _delete_inactive(self) -> None:
        log.debug("consumer %s > %s inactive: deleting", self.stream.name, self.name)
        self.stop(delete=True)
        self.stream.remove_consumer(self.name)
        advisories.consumer_action(self.server, self.account, self.stream.name, self.name, "delete",
                                   domain=self.stream.jsa.js.domain)
        if self.on_deleted is not None:
            self.on_deleted(self)
