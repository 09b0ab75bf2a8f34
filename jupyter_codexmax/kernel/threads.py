"""The two threads of an agent in a kernel.

The agent (and its model connection) lives on its own thread, with its own event loop, so
the kernel's main thread stays the kernel's: user code, ``input()``, widget and display
messages all happen there. The agent hands work to the main thread through
:class:`MainThread`:

- while a ``%%agent`` cell is running the turn to completion, the cell *serves* the queue
  (:meth:`MainThread.serve`): runs cells, asks approvals with ``input()``, renders events;
- otherwise (the turn runs in the background, or between cells) the work is scheduled on the
  kernel's own event loop, which runs it when the kernel is idle.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import CodexmaxError

__all__ = ["AgentLoop", "Interrupted", "MainThread"]

T = TypeVar("T")

#: Seconds during which an interrupt is taken as the agent's own (a cell's timeout).
OWN_INTERRUPT_WINDOW = 2.0


class Interrupted(CodexmaxError):
    """The kernel was interrupted while the main thread was doing the agent's work."""


class AgentLoop:
    """A daemon thread running an asyncio loop: the agent's home for the kernel's life."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="codexmax-agent", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)


class MainThread:
    """Work for the kernel's main thread, from the agent's thread."""

    def __init__(self, kernel_loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._serving = 0
        self.kernel_loop = kernel_loop
        self.main_ident = threading.main_thread().ident
        #: When the agent last interrupted the main thread itself (a cell's timeout): an
        #: interrupt soon after is that one, not the user's.
        self._own_interrupt_at = -1e9

    @property
    def serving(self) -> bool:
        return self._serving > 0

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the main thread; its result (or error) in the future. An interrupt
        while it runs becomes :class:`Interrupted` (never a KeyboardInterrupt on the
        agent's loop)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit from user code
                future.set_exception(Interrupted(f"interrupted ({type(exc).__name__})"))
                if isinstance(exc, KeyboardInterrupt):
                    raise

        if self.serving or self.kernel_loop is None or self.kernel_loop.is_closed():
            self._queue.put(job)
        else:
            self.kernel_loop.call_soon_threadsafe(self._run_job, job)
        return future

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the main thread, without waiting (rendering an event)."""
        self.submit(fn)

    def _run_job(self, job: Callable[[], None]) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            job()

    def serve(
        self,
        done: concurrent.futures.Future[Any],
        on_interrupt: Callable[[], bool],
        poll: float = 0.05,
    ) -> None:
        """Run queued work until ``done`` is done. A KeyboardInterrupt calls
        ``on_interrupt``; when that returns False, serving ends at once."""
        self._serving += 1
        try:
            while True:
                try:
                    try:
                        job = self._queue.get(timeout=poll)
                    except queue.Empty:
                        if done.done():
                            break
                        continue
                    job()
                except KeyboardInterrupt:
                    if time.monotonic() - self._own_interrupt_at < OWN_INTERRUPT_WINDOW:
                        continue
                    if not on_interrupt():
                        return
            self.drain()
        finally:
            self._serving -= 1

    def drain(self) -> None:
        """Run whatever work is queued now."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(KeyboardInterrupt):
                job()

    def interrupt(self) -> None:
        """Interrupt the main thread as the user would (a cell past its timeout)."""
        self._own_interrupt_at = time.monotonic()
        if self.main_ident is not None:
            signal.pthread_kill(self.main_ident, signal.SIGINT)

    async def call(
        self,
        fn: Callable[[], T],
        timeout: float | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> T:
        """From the agent's loop: run ``fn`` on the main thread and wait for it; after
        ``timeout`` seconds, ``on_timeout`` once (then keep waiting)."""
        future = asyncio.wrap_future(self.submit(fn))
        if timeout is None or on_timeout is None:
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            on_timeout()
            return await future
