"""Running coroutines without a task of their own, where that is safe and cheaper.

Creating an asyncio Task (and arming a timer) per call costs more than a cheap method itself.
A coroutine can instead be stepped inline with ``send(None)``: if it finishes, nothing else was
needed; if it suspends, ``Resume`` awaits the rest *in the same task*, so everything that
depends on the current task (timeouts, cancel scopes) stays correct.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


class Resume:
    """Awaits the rest of a coroutine whose first step already ran (``coro.send(None)``).

    It forwards what the coroutine yields (the futures it waits on) to the running task and
    what the task sends or throws (results, cancellation) back, as ``await`` itself would.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task: cancellation
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value
