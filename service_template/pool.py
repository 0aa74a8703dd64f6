"""The threads plain methods run in: work goes out through one queue, results come back to the
event loop in bursts.

Why not ``loop.run_in_executor``: per call it makes a concurrent future, an asyncio future
wrapping it, and wakes the event loop once (a write to its self-pipe); on one core that hop costs
about 19 us, more than a cheap method itself. Here a call costs one asyncio future and one queue
put. A worker that finishes appends its result to a list and wakes the loop only if the list was
empty, so a burst of results (a batch, or many connections at once) costs one wake-up, and the
loop settles them all in one callback.

One awake thread drains the queue while it can: waking a thread per call would cost a context
switch and a hand-over of the interpreter lock per call, the very cost being saved. A call
wakes (or starts, up to ``size``) another thread only when every awake thread is inside a call
at that moment. While the event loop runs, a thread inside a cheap call is rare (the loop holds
the interpreter lock, and a cheap call finishes within one switch interval), so that is the sign
of a call that blocks (sleeps, waits on a database, or computes for long): it keeps its thread
and the others go on serving. A thread that starts a call while more work waits behind it
applies the same rule first, so work submitted together (a batch) cannot sit behind a member
that blocks. Only when all ``size`` threads are inside calls do new calls wait in the queue, in
the order they came.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any


class _Inbox:
    """Finished work for one event loop, settled there in bursts; and the deadlines of the
    calls it waits for.

    Deadlines: one timer for all calls, not one each (a timer per call costs more than the
    hop). Calls with the same limit are kept in start order, so the first in each is the next to
    expire; the timer is armed for the earliest of those and, when it fires, ends what is due and
    re-arms. A call leaves its group when it finishes, so a group holds only calls in flight.
    """

    __slots__ = ("done", "groups", "lock", "loop", "on_deadline", "on_settled", "timer", "waking")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_deadline: Callable[[str, float], BaseException],
        on_settled: Callable[[int], Any] | None,
    ) -> None:
        self.loop = loop
        self.lock = threading.Lock()  # guards done and waking
        self.done: list[tuple[asyncio.Future[Any], BaseException | None, Any, float]] = []
        self.waking = False  # a settle callback is scheduled and has not run yet
        self.on_deadline = on_deadline
        self.on_settled = on_settled
        # limit -> {future: (deadline, label)}, in start order (dicts keep insertion order)
        self.groups: dict[float, dict[asyncio.Future[Any], tuple[float, str]]] = {}
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[Any], limit: float, label: str) -> None:
        """On the loop: fail ``future`` with ``on_deadline(label, limit)`` if it is not done
        ``limit`` seconds from now."""
        deadline = self.loop.time() + limit
        group = self.groups.get(limit)
        if group is None:
            group = self.groups[limit] = {}
        group[future] = (deadline, label)
        timer = self.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(deadline, self.expire)

    def expire(self) -> None:
        """On the loop: fail every call past its deadline; arm the timer for the next one."""
        self.timer = None
        now = self.loop.time()
        earliest: float | None = None
        for limit, group in list(self.groups.items()):
            for future, (deadline, label) in list(group.items()):
                if future.done():
                    del group[future]
                    continue
                if deadline > now:
                    earliest = deadline if earliest is None else min(earliest, deadline)
                    break  # the rest of the group started later, so expires later
                del group[future]
                future.set_exception(self.on_deadline(label, limit))
            if not group:
                del self.groups[limit]
        if earliest is not None:
            self.timer = self.loop.call_at(earliest, self.expire)

    def put(
        self, future: asyncio.Future[Any], error: BaseException | None, value: Any, limit: float
    ) -> None:
        """From a worker thread: hand one outcome back; wake the loop if nobody has yet."""
        with self.lock:
            self.done.append((future, error, value, limit))
            if self.waking:
                return
            self.waking = True
        # A closed loop raises RuntimeError: nobody is waiting for the outcome any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.settle)

    def settle(self) -> None:
        """On the loop: resolve every future finished since the last wake-up."""
        with self.lock:
            done, self.done = self.done, []
            self.waking = False
        if self.on_settled is not None:
            self.on_settled(len(done))
        groups = self.groups
        for future, error, value, limit in done:
            if limit:
                group = groups.get(limit)
                if group is not None:
                    group.pop(future, None)
            if future.done():  # cancelled (its caller gave up), or past its deadline
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)


class _Worker:
    """One thread's state: parked on its own lock while there is no work."""

    __slots__ = ("in_call", "park")

    def __init__(self) -> None:
        self.in_call = False  # written by its thread only; read by the loop
        self.park = threading.Lock()
        self.park.acquire()  # held: the thread blocks on it when parked, a waker releases it


class ThreadPool:
    """Up to ``size`` threads, started when needed, running work submitted from event loops."""

    def __init__(
        self,
        size: int,
        name: str,
        on_deadline: Callable[[str, float], BaseException] = lambda label, limit: TimeoutError(
            f"{label} passed its {limit:g}s deadline"
        ),
        on_settled: Callable[[int], Any] | None = None,
    ) -> None:
        """``on_deadline(label, limit)`` makes the exception a call past its deadline gets;
        ``on_settled(count)`` is told, on the loop, of each burst of calls whose threads are
        done (cancelled ones included)."""
        if size < 1:
            raise ValueError(f"a thread pool needs at least one thread, got {size}")
        self.size = size
        self.name = name
        self._jobs: deque[tuple[Callable[[], Any], asyncio.Future[Any], _Inbox, float]]
        self._jobs = deque()
        self._on_deadline = on_deadline
        self._on_settled = on_settled
        self._lock = threading.Lock()  # guards _awake, _parked, _workers and _closed
        self._awake: list[_Worker] = []  # threads draining the queue or inside a call
        self._parked: list[_Worker] = []  # threads waiting to be woken
        self._workers: list[_Worker] = []
        self._inbox: _Inbox | None = None
        self._closed = False

    def submit(
        self, work: Callable[[], Any], timeout: float = 0.0, label: str = "work"
    ) -> asyncio.Future[Any]:
        """Run ``work()`` in a pool thread; the returned future (of the running loop) gets its
        result or exception, or, with a ``timeout`` (seconds, 0 for none), ``on_deadline(label,
        timeout)`` once that passes (the thread, if it started, runs on; its outcome is dropped).

        Cancelling the future does not stop ``work`` once a thread has started it (a thread
        cannot be interrupted): its outcome is dropped. Work still queued when its future is
        cancelled never runs.
        """
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = _Inbox(loop, self._on_deadline, self._on_settled)
        future = loop.create_future()
        if timeout:
            inbox.watch(future, timeout, label)
        # Queued before the check below; a thread about to park re-checks the queue under the
        # same lock, so either it sees this call or this check sees it parked.
        self._jobs.append((work, future, inbox, timeout))
        if self._closed:
            self._jobs.pop()
            raise RuntimeError(f"thread pool {self.name} is closed")
        self._ensure_taker()
        return future

    def _ensure_taker(self) -> None:
        """Make sure a thread that is not inside a call is awake to take queued work: wake a
        parked one or start one (up to ``size``); with every thread inside a call, the work
        waits its turn."""
        with self._lock:
            for worker in self._awake:
                if not worker.in_call:
                    return  # it takes the work when it gets to it
            if self._parked:
                worker = self._parked.pop()
                self._awake.append(worker)
                worker.park.release()
                return
            if self._closed or len(self._workers) >= self.size:
                return
            worker = _Worker()
            self._workers.append(worker)
            self._awake.append(worker)
            index = len(self._workers)
        threading.Thread(
            target=self._work, args=(worker,), name=f"{self.name}_{index}", daemon=True
        ).start()

    @property
    def threads(self) -> int:
        """Threads started so far (at most ``size``)."""
        return len(self._workers)

    @property
    def parked(self) -> int:
        """Threads waiting to be woken for work."""
        return len(self._parked)

    def busy(self) -> int:
        """Threads inside a call right now."""
        return sum(worker.in_call for worker in self._workers)

    def close(self) -> None:
        """Stop accepting work; each thread ends once the calls queued before are done (or
        cancelled). Does not wait: a thread stuck in a call must not hold up the process exit
        (the threads are daemons)."""
        with self._lock:
            self._closed = True
            parked, self._parked = self._parked, []
            self._awake.extend(parked)
        for worker in parked:
            worker.park.release()

    def _work(self, worker: _Worker) -> None:
        jobs = self._jobs
        while True:
            try:
                work, future, inbox, limit = jobs.popleft()
            except IndexError:
                with self._lock:
                    if jobs:
                        continue
                    if self._closed:
                        self._awake.remove(worker)
                        return
                    self._awake.remove(worker)
                    self._parked.append(worker)
                worker.park.acquire()
                continue
            if future.done():  # cancelled or past its deadline: never started (a read of its
                inbox.put(future, None, None, limit)  # state is safe from any thread)
                continue
            worker.in_call = True
            if jobs:
                # More work waits behind this call, which may block: another thread must be
                # awake to take it (a batch's members arrive together and wake one thread).
                self._ensure_taker()
            try:
                inbox.put(future, None, work(), limit)
            except BaseException as exc:  # handed to the caller, as run_in_executor does
                inbox.put(future, exc, None, limit)
            worker.in_call = False
            del work, future, inbox  # hold no call's objects while waiting for the next
