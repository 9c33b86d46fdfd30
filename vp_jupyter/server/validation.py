"""`Validator`: where the server parses and checks run requests, off the event loop and bounded, so that no
request can starve the others or hold up shutdown.

Checking a case is pure Python: it holds the interpreter while it works, and its cost grows with the request
(layers, time-series rows). So it never runs on the event loop, nor in the loop's shared thread pool
(where a few huge posts used to occupy every thread and a plain case waited behind them):

* two lanes of threads: requests up to `SMALL_REQUEST_BYTES` go to the small lane, larger ones to the large
  lane, so a huge post can only ever delay other huge posts;
* a bounded queue: at most `max_waiting` requests wait in a lane; more are refused at once (`ValidationBusy`),
  and one owner may have at most the number of requests the caller allows being checked at once;
* daemon threads: stopping the server never waits for a check in progress (its request is dropped).
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any, Callable

SMALL_REQUEST_BYTES = 256 * 1024    # a plain case is a few kB; a big one has thousands of layers or rows


class ValidationBusy(RuntimeError):
    """A request was not checked: too many are waiting (the message says which limit)."""


class _Lane:
    """Daemon threads taking work from one queue."""

    def __init__(self, name: str, threads: int):
        self.name = name
        self.queue: "queue.SimpleQueue[tuple[Future, Callable[[], Any]] | None]" = queue.SimpleQueue()
        self.waiting = 0
        self.threads = [threading.Thread(target=self._serve, name=f"vp-validate-{name}-{i}", daemon=True)
                        for i in range(threads)]
        for thread in self.threads:
            thread.start()

    def _serve(self) -> None:
        while (item := self.queue.get()) is not None:
            future, work = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as err:        # noqa: BLE001 - handed to the waiting request
                future.set_exception(err)


class Validator:
    """Runs `work()` for a request in the lane its size picks (see the module docstring)."""

    def __init__(self, small_threads: int = 2, large_threads: int = 1, max_waiting: int = 16):
        self.max_waiting = max_waiting
        self._small = _Lane("small", small_threads)
        self._large = _Lane("large", large_threads)
        self.threads = [*self._small.threads, *self._large.threads]
        self._lock = threading.Lock()
        self._owners: Counter = Counter()

    def pending(self, owner: str) -> int:
        """Requests of `owner` waiting or being checked now."""
        with self._lock:
            return self._owners[owner]

    async def run(self, work: Callable[[], Any], size: int, owner: str = "", owner_limit: int | None = None) -> Any:
        """`work()`'s result, computed in a lane thread; ValidationBusy when the lane's queue or the owner's
        share is full."""
        lane = self._small if size <= SMALL_REQUEST_BYTES else self._large
        with self._lock:
            if lane.waiting >= self.max_waiting:
                raise ValidationBusy(f"the server is busy checking {lane.waiting} other large requests; try again "
                                     "shortly")
            if owner_limit is not None and self._owners[owner] >= owner_limit:
                raise ValidationBusy(f"{owner} already has {self._owners[owner]} requests being checked (the limit "
                                     f"is {owner_limit}); try again shortly")
            lane.waiting += 1
            self._owners[owner] += 1
        future: Future = Future()
        try:
            lane.queue.put((future, work))
            return await asyncio.wrap_future(future)
        finally:
            future.cancel()                     # a request gone before its turn is never checked
            with self._lock:
                lane.waiting -= 1
                self._owners[owner] -= 1
                if not self._owners[owner]:
                    del self._owners[owner]

    def close(self) -> None:
        """Let the threads end after the work they have (they are daemons: nobody waits for them)."""
        for lane in (self._small, self._large):
            for _ in lane.threads:
                lane.queue.put(None)
