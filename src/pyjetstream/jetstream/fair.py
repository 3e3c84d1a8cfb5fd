"""Fair scheduling of long JetStream requests: work cut into time slices on the one event loop.

Owns the slice clock, the drivers that run a job (a generator that yields wherever it may
pause) one slice per loop pass, and the sliced versions of the store queries whose cost grows
with the stream (wildcard gets, subject details, filtered purges). A job's first slice runs at
once, inside the request's dispatch, so a cheap request is answered exactly as before; only a
job still running when its slice is spent continues as a task, and the requesting client's
later operations wait for it in order (ClientConnection.hold_until), as they would behind
nats-server's per-client read loop. Other clients go on between slices.

Must not hold a store iterator across a pause (the file store may rewrite a segment under it):
every sliced query re-enters the store with a sequence bound. Knows stores through their
public bounded queries only, and streams through `store` and `closed`; it does not import the
stream or API modules.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeVar

from pyjetstream.jetstream import errors
from pyjetstream.jetstream.seams import ApiClient
from pyjetstream.jetstream.store.base import SimpleState, StoredMsg

T = TypeVar("T")
# A job: yields (None) where it may pause, returns its result.
Job = Generator[None, None, T]

# How long one slice may run before the job gives the loop back (a window of work may follow
# the check). Jobs take turns, one slice per loop pass between them all (_turn), so a loop pass
# costs about one slice however many long requests are running; the bound for any stall is
# 50 ms, and a request/reply between two other clients needs a few passes.
SLICE_S = 0.005
# Sequences one bounded store scan covers between clock checks (a few ms at worst, the file
# store reading backwards).
WINDOW = 2048
# Subjects handled between clock checks when listing subject details.
SUBJECTS_CHUNK = 2048

_until = 0.0
_tasks: set[asyncio.Task[Any]] = set()
_queue: deque[asyncio.Future[None]] = deque()  # jobs waiting for their next slice
_granting = False


class _Stream(Protocol):
    store: Any
    closed: bool


def due() -> bool:
    """The running job has spent its slice."""
    return time.perf_counter() >= _until


# A new request's first slice, while other long jobs wait for their turn: enough for any cheap
# request to answer inline, short enough that requests arriving together cannot add up to a
# long loop pass (the rest of a long one queues behind the others).
BUSY_FIRST_SLICE_S = 0.001


def _renew(first: bool = False) -> None:
    global _until
    _until = time.perf_counter() + (BUSY_FIRST_SLICE_S if first and _queue else SLICE_S)


def pause(stream: _Stream | None = None) -> Job[None]:
    """A pause point: yields when the slice is spent; afterwards the stream must still exist
    (a job whose stream was deleted meanwhile ends with 10059)."""
    if due():
        yield
        if stream is not None and stream.closed:
            raise errors.stream_not_found()


def start(job: Job[T], done: Callable[[T | None, BaseException | None], None],
          client: ApiClient | None = None) -> None:
    """Run `job`: its first slice now, the rest one slice per loop pass. `done(result, None)` or
    `done(None, exc)` is called once, from the slice that finished it. While it runs, `client`
    (the requester) processes nothing else."""
    _renew(first=True)
    try:
        next(job)
    except StopIteration as stop:
        done(stop.value, None)
        return
    except Exception as e:  # noqa: BLE001 - handed to done(), which owns error replies
        done(None, e)
        return
    task = asyncio.get_running_loop().create_task(_rest(job, done))
    _tasks.add(task)  # the loop keeps only a weak reference to tasks
    task.add_done_callback(_tasks.discard)
    if client is not None:
        client.hold_until(task)


async def _turn() -> None:
    """Wait for this job's next slice: granted one per loop pass, first come first served."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    _queue.append(fut)
    _schedule_grant(loop)
    await fut


def _schedule_grant(loop: asyncio.AbstractEventLoop) -> None:
    global _granting
    if not _granting:
        _granting = True
        loop.call_soon(_grant, loop)


def _grant(loop: asyncio.AbstractEventLoop) -> None:
    global _granting
    _granting = False
    while _queue:
        fut = _queue.popleft()
        if not fut.done():  # a cancelled job (shutdown) has no turn to take
            fut.set_result(None)
            break
    if _queue:
        _schedule_grant(loop)


async def _rest(job: Job[T], done: Callable[[T | None, BaseException | None], None]) -> None:
    while True:
        await _turn()
        _renew()
        try:
            next(job)
        except StopIteration as stop:
            done(stop.value, None)
            return
        except Exception as e:  # noqa: BLE001 - as in start()
            done(None, e)
            return


async def complete(job: Job[T]) -> T:
    """Run a job from a coroutine (the monitoring handlers), a slice per loop pass."""
    _renew(first=True)
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value
        await _turn()
        _renew()


def run_now(job: Job[T]) -> T:
    """Run a job to its end without pausing (recovery, where nobody else is served yet)."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


# ------------------------------------------------------------------ sliced store queries


def load_next(stream: _Stream, filter_subject: str, start_seq: int) -> Job[StoredMsg | None]:
    """store.load_next_msg, in slices when the filter makes it a scan."""
    store = stream.store
    if not store.scans_records(filter_subject):
        return store.load_next_msg(filter_subject, start_seq)
    seq = max(start_seq, store.first_seq)
    while seq <= store.last_seq:
        end = seq + WINDOW - 1
        found = store.next_match_in(filter_subject, seq, end)
        if found:
            m = store.load_msg(found)
            if m is not None:
                return m
            seq = found + 1
        else:
            seq = end + 1
        yield from pause(stream)
        store = stream.store
    return None


def load_last(stream: _Stream, filter_subject: str) -> Job[StoredMsg | None]:
    """store.load_last_msg, in slices when the filter makes it a scan."""
    store = stream.store
    if not store.scans_records(filter_subject):
        return store.load_last_msg(filter_subject)
    seq = store.last_seq
    while seq >= store.first_seq and store.num_msgs:
        lo = seq - WINDOW + 1
        found = store.prev_match_in(filter_subject, seq, lo)
        if found:
            m = store.load_msg(found)
            if m is not None:
                return m
            seq = found - 1
        else:
            seq = lo - 1
        yield from pause(stream)
    return None


def get_msg(stream: _Stream, seq: int = 0, last_by_subj: str = "", next_by_subj: str = "") -> Job[StoredMsg | None]:
    """Stream.get_msg's three forms, sliced."""
    if last_by_subj:
        return (yield from load_last(stream, last_by_subj))
    if next_by_subj:
        return (yield from load_next(stream, next_by_subj, seq))
    if seq:
        return stream.store.load_msg(seq)
    return None


def filtered_state(stream: _Stream, start_seq: int, filter_subject: str) -> Job[SimpleState]:
    """store.filtered_state, in slices when the filter makes it a scan."""
    store = stream.store
    if not store.scans_records(filter_subject):
        return store.filtered_state(start_seq, filter_subject)
    n = first = last = 0
    seq = max(start_seq, store.first_seq)
    end_all = store.last_seq
    while seq <= end_all:
        part = store.state_in(filter_subject, seq, seq + WINDOW - 1)
        if part.msgs:
            n += part.msgs
            first = first or part.first
            last = part.last
        seq += WINDOW
        yield from pause(stream)
    return SimpleState(n, first, last)


def subjects_state(stream: _Stream, filter_subject: str) -> Job[dict[str, SimpleState]]:
    """store.subjects_state, in slices over the subject table when it is big."""
    from pyjetstream.jetstream.store._match import is_all, is_literal, matcher

    store = stream.store
    if is_literal(filter_subject) and not is_all(filter_subject):
        return store.subjects_state(filter_subject)
    names = store.subject_names()
    if len(names) <= SUBJECTS_CHUNK:
        return store.subjects_state(filter_subject)
    match = matcher(filter_subject)
    out: dict[str, SimpleState] = {}
    for i in range(0, len(names), SUBJECTS_CHUNK):
        for name in names[i:i + SUBJECTS_CHUNK]:
            if match(name):
                ss = store.subject_state(name)
                if ss is not None:
                    out[name] = ss
        yield from pause(stream)
        store = stream.store
    return out


def purge(stream: _Stream, filter_subject: str = "", seq: int = 0, keep: int = 0) -> Job[int]:
    """store.purge (nats-server's PurgeEx) in slices: what it removes is decided by the stream
    as it is when the purge starts; messages stored meanwhile are not touched."""
    from pyjetstream.jetstream.store._match import is_all

    store = stream.store
    if is_all(filter_subject):
        if keep > 0:
            if keep >= store.num_msgs:
                return 0
            # the floor: the keep-th newest live message
            floor = 0
            kept = 0
            hi = store.last_seq
            while hi >= store.first_seq:
                lo = max(hi - WINDOW + 1, store.first_seq)
                for s in reversed(store.matches_in("", lo, hi, WINDOW)):
                    kept += 1
                    if kept == keep:
                        floor = s
                        break
                if floor:
                    break
                hi = lo - 1
                yield from pause(stream)
            if seq > 0:
                floor = min(floor, seq)
        else:
            floor = seq if seq > 0 else store.last_seq + 1
        if floor > store.last_seq:
            return store.compact(floor)  # everything: the stores drop it whole
        # compact in steps: each step forgets a bounded run of sequences
        n = 0
        while store.first_seq < floor and store.num_msgs:
            step = min(floor, store.first_seq + WINDOW)
            n += store.compact(step)
            yield from pause(stream)
        return n
    fs = yield from filtered_state(stream, store.first_seq, filter_subject)
    todo = fs.msgs - keep if keep > 0 else fs.msgs
    if todo <= 0:
        return 0
    hi = fs.last if seq <= 0 else min(fs.last, seq - 1)
    n = 0
    cur = fs.first
    while todo > 0 and cur <= hi:
        end = min(cur + WINDOW - 1, hi)
        for s in store.matches_in(filter_subject, cur, end, todo):
            if store.remove_msg(s):
                n += 1
                todo -= 1
        cur = end + 1
        yield from pause(stream)
        store = stream.store
    return n


def count_pending(stream: _Stream, per_subject: bool, filters: list[str], start_seq: int) -> Job[int]:
    """A consumer's num_pending (Consumer.pending_plan says what to count), in slices."""
    n = 0
    for f in filters:
        if per_subject:
            n += sum(1 for ss in (yield from subjects_state(stream, f)).values() if ss.last >= start_seq)
        else:
            n += (yield from filtered_state(stream, start_seq, f)).msgs
    return n
