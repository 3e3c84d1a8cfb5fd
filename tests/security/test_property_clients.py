"""Property test: random raw-socket clients against one pyjetstream server with users,
permissions, two accounts, no_auth_user and JetStream cannot see, change or reach what their
user may not.

One server runs for the whole test (accounts A and B, no_auth_user guest, JetStream on). Each
example (re)creates streams ASECRET (payroll.*) and APUB (public.*) and the pull consumer C1 in
account A as admin, and BSTREAM (payroll.*) in account B. Then several raw-socket clients
(raw, so they can act before CONNECT, or never CONNECT) send random CONNECT (as guest, jsro,
other, with a wrong password, or with no credentials: no_auth_user), SUB, UNSUB, PUB and HPUB
with subjects and reply subjects drawn from private (payroll.*), public (public.*), JetStream
API ($JS.API.STREAM.DELETE/PURGE/INFO, $JS.API.CONSUMER.DELETE/MSG.NEXT), $JS.ACK and _INBOX
subjects. admin is never one of the random users: its every request is allowed, so it would
leave nothing to check.

Invariants after every step, from a model of the permissions written here (not the server's):
- a client receives a MSG only on a sid its user was allowed to subscribe with, for a subject
  that subscription matches and its user may subscribe to (a client that never sent CONNECT
  is no_auth_user's guest, as in nats-server);
- account A's JetStream state changes only through publishes the sender may make: streams and
  consumers never disappear, message counts never go down and grow by at most the permitted
  publishes captured by the stream; account B's likewise, except through B's own API requests;
- a client of one account never receives a message published in the other, nor the other's
  stream configuration;
- the server process stays up and answers PING.

What it found, now fixed (src/pyjetstream/server/client.py, server.py): ops before CONNECT ran
with the account's full rights instead of no_auth_user's permissions; API responses and PubAcks
published to a client-chosen reply subject such as `$JS.API.STREAM.PURGE.S` ran as API requests
(such replies are refused, in nats-server's words: -ERR 'Permissions Violation for Publish with
Reply of "..."'), and a PubAck sent to a reply subject a stream captured was stored there.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from servers import RawClient, ServerProc, start_server

CONF = """
accounts {
  A: { jetstream: enabled, users: [
      { user: admin, password: adminpw },
      { user: guest, password: guestpw, permissions: { publish: "public.>", subscribe: ["public.>", "_INBOX.>"] } },
      { user: jsro, password: p, permissions: { publish: ["$JS.API.STREAM.INFO.>"], subscribe: "_INBOX.>" } }
  ] }
  B: { jetstream: enabled, users: [ { user: other, password: otherpw } ] }
}
no_auth_user: guest
"""


@dataclass(frozen=True)
class User:
    password: str
    account: str
    pub: tuple[str, ...] | None  # None: everything
    sub: tuple[str, ...] | None


USERS = {
    "admin": User("adminpw", "A", None, None),
    "guest": User("guestpw", "A", ("public.>",), ("public.>", "_INBOX.>")),
    "jsro": User("p", "A", ("$JS.API.STREAM.INFO.>",), ("_INBOX.>",)),
    "other": User("otherpw", "B", None, None),
}
NO_AUTH_USER = "guest"

# stream -> (account, subjects); C1 is a pull consumer of ASECRET
STREAMS = {"ASECRET": ("A", "payroll.*"), "APUB": ("A", "public.*"), "BSTREAM": ("B", "payroll.*")}
CONSUMERS = {"ASECRET": {"C1"}, "APUB": set(), "BSTREAM": set()}

LITERALS = (
    "payroll.x", "payroll.y", "public.x", "public.y",
    "$JS.API.STREAM.DELETE.ASECRET", "$JS.API.STREAM.PURGE.ASECRET", "$JS.API.STREAM.PURGE.APUB",
    "$JS.API.STREAM.INFO.ASECRET", "$JS.API.STREAM.INFO.APUB", "$JS.API.STREAM.INFO.BSTREAM",
    "$JS.API.STREAM.DELETE.BSTREAM", "$JS.API.STREAM.PURGE.BSTREAM",
    "$JS.API.CONSUMER.DELETE.ASECRET.C1", "$JS.API.CONSUMER.MSG.NEXT.ASECRET.C1",
    "$JS.ACK.ASECRET.C1.1.1.1.0.0", "$JS.ACK.APUB.C1.1.1.1.0.0", "_INBOX.r1", "_INBOX.r2",
)
PATTERNS = (*LITERALS, "payroll.*", "public.*", "public.>", ">", "*.x", "_INBOX.>", "$JS.API.>", "$JS.>",
            "$JS.ACK.>")
# Payloads of B's API requests that may change B's JetStream state (B's own, allowed)
B_MUTATIONS = ("$JS.API.STREAM.DELETE.BSTREAM", "$JS.API.STREAM.PURGE.BSTREAM")
CONNECT_AS = (None, "guest", "jsro", "other", "guest:wrong", "admin:wrong", "nobody:x")
N_CLIENTS = 4


# ---------------------------------------------------------------- permission model
def _matches(pattern: str, subject: str) -> bool:
    """Does the literal `subject` match `pattern` (NATS wildcards)?"""
    pt, st_ = pattern.split("."), subject.split(".")
    for i, p in enumerate(pt):
        if p == ">":
            return len(st_) > i
        if i >= len(st_) or (p != "*" and p != st_[i]):
            return False
    return len(pt) == len(st_)


def _subset(sub: str, of: str) -> bool:
    """Is every subject `sub` matches also matched by `of`? (nats-server's test of a SUB
    against an allow list)."""
    s, o = sub.split("."), of.split(".")
    for i, t in enumerate(o):
        if t == ">":
            return len(s) > i
        if i >= len(s):
            return False
        if t == "*":
            if s[i] == ">":
                return False
        elif t != s[i]:
            return False
    return len(s) == len(o)


def may_publish(user: str, subject: str) -> bool:
    allow = USERS[user].pub
    return allow is None or any(_matches(a, subject) for a in allow)


def may_subscribe(user: str, pattern: str) -> bool:
    allow = USERS[user].sub
    return allow is None or any(_subset(pattern, a) for a in allow)


def may_receive(user: str, subject: str) -> bool:
    allow = USERS[user].sub
    return allow is None or any(_matches(a, subject) for a in allow)


# ---------------------------------------------------------------- wire client
@dataclass
class Frame:
    kind: str  # MSG, HMSG, -ERR, +OK, INFO, PING
    subject: str = ""
    sid: str = ""
    reply: str = ""
    payload: bytes = b""
    text: str = ""


@dataclass
class Slot:
    """One random client: its socket and what the model knows of it."""
    sock: socket.socket
    user: str | None = None  # who CONNECT made it; None: no CONNECT (yet)
    sent_anything: bool = False
    dead: bool = False
    subs: dict[str, tuple[str, bool]] = field(default_factory=dict)  # sid -> (pattern, allowed)
    next_sid: int = 1
    buf: bytes = b""
    log: list[str] = field(default_factory=list)

    @property
    def effective_user(self) -> str:
        # a client that never sent CONNECT is the no_auth_user (nats-server 2.9.10 applies its
        # permissions to everything such a client sends: it does not ask for auth in INFO)
        return self.user or NO_AUTH_USER

    def send(self, data: bytes) -> None:
        if data not in (b"PING\r\n", b"PONG\r\n"):
            self.log.append(repr(data))
        try:
            self.sock.sendall(data)
        except OSError:
            self.dead = True

    def sync(self, timeout: float = 5.0) -> list[Frame]:
        """PING, then every frame received before its PONG (or until the server closed)."""
        self.send(b"PING\r\n")
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self._next_frame()
            if frame is None:
                if self.dead:
                    return frames
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no PONG from the server within {timeout}s; got {frames} {self.buf!r}")
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    self.dead = True
                else:
                    self.buf += chunk
                continue
            if frame.kind == "PONG":
                return frames
            if frame.kind == "PING":
                self.send(b"PONG\r\n")
                continue
            frames.append(frame)

    def _next_frame(self) -> Frame | None:
        end = self.buf.find(b"\r\n")
        if end < 0:
            return None
        line = self.buf[:end]
        head = line.split(b" ", 1)[0]
        if head in (b"MSG", b"HMSG"):
            args = line.split(b" ")[1:]
            total = int(args[-1])
            need = end + 2 + total + 2
            if len(self.buf) < need:
                return None
            payload = self.buf[end + 2:end + 2 + total]
            self.buf = self.buf[need:]
            n_fixed = 3 if head == b"MSG" else 4  # subject sid [reply] (hdr) total
            reply = args[2].decode() if len(args) > n_fixed else ""
            return Frame(head.decode(), args[0].decode(), args[1].decode(), reply, payload)
        self.buf = self.buf[end + 2:]
        text = line.decode("utf-8", "replace")
        return Frame(text.split(" ", 1)[0], text=text)


# ---------------------------------------------------------------- the machine
class ClientsMachine(RuleBasedStateMachine):
    server: ServerProc  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        self.slots: list[Slot] = []
        self.admin: RawClient | None = None
        self.counter = 0
        # per stream: last count seen, and how many more messages permitted publishes may add
        self.seen: dict[str, int] = {}
        self.allowance: dict[str, int] = {}
        self.consumers_seen: dict[str, dict[str, tuple[int, ...]]] = {}
        # per stream: publishes whose reply subject it captures (a server reply sent there
        # would be stored: named in the failure, as the likely cause)
        self.replies_into: dict[str, int] = {name: 0 for name in STREAMS}
        self.b_free = 0  # steps during which B's own API requests may change BSTREAM

    # ------------------------------------------------------------ setup
    @initialize()
    def setup(self) -> None:
        self.admin = self._admin()
        for name, (acct, subjects) in STREAMS.items():
            if acct == "A":
                self._api(self.admin, f"$JS.API.STREAM.CREATE.{name}",
                          {"name": name, "subjects": [subjects], "storage": "memory"})
        self._api(self.admin, "$JS.API.CONSUMER.DURABLE.CREATE.ASECRET.C1",
                  {"stream_name": "ASECRET", "config": {"durable_name": "C1", "ack_policy": "explicit"}})
        other = RawClient(self.server.port)
        other.send(b'CONNECT {"verbose":false,"user":"other","pass":"otherpw"}\r\n')
        self._api(other, "$JS.API.STREAM.CREATE.BSTREAM",
                  {"name": "BSTREAM", "subjects": [STREAMS["BSTREAM"][1]], "storage": "memory"})
        other.close()
        # something in the private stream for forged pulls and acks to take
        self.admin.send(b"PUB payroll.x 6\r\nsecret\r\nPUB payroll.y 6\r\nsecret\r\n")
        self.admin.sync()
        state = self._js_state()
        for name in STREAMS:
            assert name in state, f"setup could not create {name}: {state}"
            self.seen[name] = state[name][0]
            self.consumers_seen[name] = state[name][1]
            self.allowance[name] = 0
        self.slots = [self._new_slot() for _ in range(N_CLIENTS)]

    def _admin(self) -> RawClient:
        c = RawClient(self.server.port)
        c.send(b'CONNECT {"verbose":false,"user":"admin","pass":"adminpw"}\r\n')
        c.sync()
        return c

    @staticmethod
    def _api(c: RawClient, subject: str, body: dict) -> None:
        """An API request whose answer is awaited (an existing stream or consumer is fine)."""
        payload = json.dumps(body).encode()
        c.send(b"SUB _INBOX.setup 77\r\nPUB %s _INBOX.setup %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
        got = c.read_until(b"\r\n", 2)
        assert got.startswith(b"MSG _INBOX.setup"), got
        c.send(b"UNSUB 77\r\n")
        c.sync()

    def _new_slot(self) -> Slot:
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        slot = Slot(sock)
        while b"\r\n" not in slot.buf:  # the INFO line
            chunk = sock.recv(65536)
            assert chunk, "the server closed a new connection before INFO"
            slot.buf += chunk
        slot.buf = slot.buf[slot.buf.index(b"\r\n") + 2:]
        return slot

    def _js_state(self) -> dict[str, tuple[int, dict[str, tuple[int, ...]]]]:
        """stream -> (messages, {consumer: its delivery state}), both accounts, from /jsz. A
        stream in the wrong account is keyed `account:name`."""
        doc = self.server.get_json("/jsz?accounts=1&streams=1&consumers=1")
        out: dict[str, tuple[int, dict[str, tuple[int, ...]]]] = {}
        for acct in doc.get("account_details", []):
            for sd in acct.get("stream_detail", []):
                key = sd["name"] if STREAMS.get(sd["name"], ("?",))[0] == acct["name"] else f"{acct['name']}:{sd['name']}"
                # what only pulls and acks move (num_pending follows new messages, so not it)
                out[key] = (sd["state"]["messages"], {
                    c["name"]: (c["delivered"]["stream_seq"], c["ack_floor"]["stream_seq"], c["num_ack_pending"],
                                c["num_waiting"], c["num_redelivered"])
                    for c in sd.get("consumer_detail", [])})
        return out

    # ------------------------------------------------------------ rules
    @rule(i=st.integers(0, N_CLIENTS - 1), who=st.sampled_from(CONNECT_AS))
    def connect(self, i: int, who: str | None) -> None:
        slot = self.slots[i]
        if slot.dead or slot.sent_anything:
            # CONNECT comes first or not at all: what a later one does to earlier subscriptions
            # is not what this test is about
            return
        opts: dict[str, object] = {"verbose": False, "pedantic": False, "headers": True, "protocol": 1}
        user = None
        if who is not None:
            name, _, bad = who.partition(":")
            opts.update(user=name, **{"pass": bad or USERS[name].password})
            user = None if bad else name
        slot.send(b"CONNECT " + json.dumps(opts).encode() + b"\r\n")
        slot.sent_anything = True
        slot.user = user if who is not None else NO_AUTH_USER
        if who is not None and user is None:
            slot.user = "(refused)"  # wrong credentials: the server must close it

    @rule(i=st.integers(0, N_CLIENTS - 1), pattern=st.sampled_from(PATTERNS),
          queue=st.sampled_from(("", "", "q")))
    def sub(self, i: int, pattern: str, queue: str) -> None:
        slot = self.slots[i]
        if slot.dead:
            return
        sid = str(slot.next_sid)
        slot.next_sid += 1
        user = slot.effective_user
        slot.subs[sid] = (pattern, user in USERS and may_subscribe(user, pattern))
        slot.send(f"SUB {pattern}{' ' + queue if queue else ''} {sid}\r\n".encode())
        slot.sent_anything = True

    @rule(i=st.integers(0, N_CLIENTS - 1), which=st.integers(0, 20))
    def unsub(self, i: int, which: int) -> None:
        slot = self.slots[i]
        if slot.dead or not slot.subs:
            return
        sid = sorted(slot.subs)[which % len(slot.subs)]
        slot.send(f"UNSUB {sid}\r\n".encode())
        slot.sent_anything = True
        # the entry stays: a MSG already routed may still arrive before the UNSUB is read

    @rule(i=st.integers(0, N_CLIENTS - 1), subject=st.sampled_from(LITERALS),
          reply=st.sampled_from(("",) + LITERALS), headers=st.booleans())
    def pub(self, i: int, subject: str, reply: str, headers: bool) -> None:
        slot = self.slots[i]
        if slot.dead:
            return
        user = slot.effective_user
        self.counter += 1
        acct = USERS[user].account if user in USERS else "?"
        # API requests get an empty body (a purge of everything); the rest is tagged with the
        # publisher's account so another account's client seeing it is caught
        payload = b"" if subject.startswith("$JS.") else f"acct={acct};n={self.counter}".encode()
        r = f" {reply}" if reply else ""
        if headers:
            hdr = b"NATS/1.0\r\nX-Acct: " + acct.encode() + b"\r\n\r\n"
            slot.send(f"HPUB {subject}{r} {len(hdr)} {len(hdr) + len(payload)}\r\n".encode() + hdr + payload + b"\r\n")
        else:
            slot.send(f"PUB {subject}{r} {len(payload)}\r\n".encode() + payload + b"\r\n")
        slot.sent_anything = True
        for name, (s_acct, s_subj) in STREAMS.items():
            if reply and s_acct == acct and _matches(s_subj, reply):
                self.replies_into[name] += 1
        if user in USERS and may_publish(user, subject):
            for name, (s_acct, s_subj) in STREAMS.items():
                if s_acct == acct and _matches(s_subj, subject):
                    self.allowance[name] += 1
            if acct == "B" and subject in B_MUTATIONS:
                self.b_free = 3

    # no precondition on `dead`: the server decides that, and hypothesis needs the rules it
    # may draw from to depend on the test's own choices only
    @rule(i=st.integers(0, N_CLIENTS - 1))
    def reopen(self, i: int) -> None:
        if self.slots[i].dead:
            self.slots[i].sock.close()
            self.slots[i] = self._new_slot()

    # ------------------------------------------------------------ invariants
    @invariant()
    def deliveries_respect_permissions_and_accounts(self) -> None:
        for n, slot in enumerate(self.slots):
            if slot.dead:
                continue
            frames = slot.sync()
            if slot.user == "(refused)":
                assert slot.dead or any("Authorization Violation" in f.text for f in frames), \
                    f"client {n}: a CONNECT with wrong credentials was accepted: {frames}"
                slot.dead = True  # whatever it got, it must not be used as anyone
                continue
            user = slot.effective_user
            acct = USERS[user].account
            for f in frames:
                if f.kind not in ("MSG", "HMSG"):
                    continue
                where = f"client {n} ({user}, account {acct}) got {f.kind} {f.subject} sid {f.sid} " \
                        f"reply {f.reply!r} payload {f.payload[:120]!r}; it sent {slot.log}"
                sub = slot.subs.get(f.sid)
                assert sub is not None, f"unknown sid: {where}"
                pattern, allowed = sub
                assert allowed, f"delivery on a subscription its user may not make ({pattern}): {where}"
                assert _matches(pattern, f.subject), f"subject outside its subscription {pattern}: {where}"
                assert may_receive(user, f.subject), f"subject its user may not subscribe to: {where}"
                foreign = "B" if acct == "A" else "A"
                assert f"acct={foreign};".encode() not in f.payload, f"message from account {foreign}: {where}"
                assert b"X-Acct: " + foreign.encode() not in f.payload, f"message from account {foreign}: {where}"
                for name, (s_acct, _) in STREAMS.items():
                    if s_acct == foreign and s_acct != acct:
                        leak = b'"config":{"name":"' + name.encode() + b'"'
                        assert leak not in f.payload, f"stream config of account {foreign}: {where}"

    @invariant()
    def server_up(self) -> None:
        if self.admin is None:
            return
        assert self.server.proc is not None and self.server.proc.poll() is None, \
            f"the server exited:\n{self.server.log()[-3000:]}"
        self.admin.sync()  # answers PING

    @invariant()
    def jetstream_changes_only_as_permitted(self) -> None:
        if not self.seen:
            return
        state = self._js_state()
        b_free = self.b_free > 0
        self.b_free = max(0, self.b_free - 1)
        for key in state:
            assert key in STREAMS, f"a stream nobody may create appeared: {key} {state}"
        for name, (acct, _) in STREAMS.items():
            if acct == "B" and b_free:
                if name in state:  # B's own purge or delete: start over from what is there
                    self.seen[name], self.allowance[name] = state[name][0], 0
                    self.consumers_seen[name] = state[name][1]
                continue
            if acct == "B" and name not in state:
                # deleted by B earlier (allowed then); nothing to check until it is back
                continue
            assert name in state, f"stream {name} (account {acct}) was deleted: {state}\n{self._history()}"
            count, consumers = state[name]
            assert set(consumers) == CONSUMERS[name], \
                f"consumers of {name} changed: {set(consumers)} != {CONSUMERS[name]}\n{self._history()}"
            # nobody here may pull from or ack for A's consumer (no user has MSG.NEXT or $JS.ACK)
            assert consumers == self.consumers_seen[name], \
                f"consumer state of {name} changed: {self.consumers_seen[name]} -> {consumers}\n{self._history()}"
            assert count >= self.seen[name], \
                f"{name} lost messages: {self.seen[name]} -> {count}\n{self._history()}"
            grown = count - self.seen[name]
            assert grown <= self.allowance[name], \
                f"{name} grew by {grown}, permitted publishes allow {self.allowance[name]}" + (
                    f" ({self.replies_into[name]} publishes named a subject of {name} as their reply: a server "
                    "reply, PubAck or API response, stored in a stream the publisher may not write to)"
                    if self.replies_into[name] else "") + f"\n{self._history()}"
            self.seen[name] = count
            self.allowance[name] -= grown

    def _history(self) -> str:
        return "\n".join(f"client {n} ({s.user or 'no CONNECT'}): {' '.join(s.log)}" for n, s in enumerate(self.slots))

    def teardown(self) -> None:
        try:
            if self.seen:
                # API requests run asynchronously: one last look once they had time to land
                time.sleep(0.2)
                self.jetstream_changes_only_as_permitted()
        finally:
            for s in self.slots:
                s.sock.close()
            if self.admin is not None:
                self.admin.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    d: Path = tmp_path_factory.mktemp("property_clients")
    s = start_server("pyjetstream", d, "-m", "-1", "-js", "-sd", str(d / "js"), config=CONF)
    try:
        yield s
    finally:
        s.stop()


def test_random_clients_stay_within_their_permissions(server: ServerProc) -> None:
    ClientsMachine.server = server
    run_state_machine_as_test(
        ClientsMachine,
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None, database=None))
