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
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ..errors import CodexmaxError

__all__ = ["AgentLoop", "Interrupted", "MainThread"]

T = TypeVar("T")

#: Seconds a cell keeps absorbing interrupts after the agent's work ended, once it was
#: interrupted (a second press of the stop button).
INTERRUPT_GRACE = 0.5

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


class _Job:
    """A callable for the main thread and the future of its result."""

    __slots__ = ("fn", "future", "interruptible")

    def __init__(
        self,
        fn: Callable[[], Any],
        future: concurrent.futures.Future[Any],
        interruptible: bool = False,
    ) -> None:
        self.fn = fn
        self.future = future
        #: Whether an interrupt may stop it (user code, ``input()``); rendering and saving
        #: are never cut in the middle.
        self.interruptible = interruptible

    def __call__(self) -> None:
        future = self.future
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(self.fn())
        except Exception as exc:
            future.set_exception(exc)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit from user code
            future.set_exception(Interrupted(f"interrupted ({type(exc).__name__})"))
            if isinstance(exc, KeyboardInterrupt):
                raise

    @property
    def started(self) -> bool:
        return self.future.running() or self.future.done()


class MainThread:
    """Work for the kernel's main thread, from the agent's thread."""

    def __init__(self, kernel_loop: asyncio.AbstractEventLoop | None = None) -> None:
        # Not a SimpleQueue: its get(timeout=...) can block for good when a signal lands
        # near the end of the timeout (CPython 3.11: a negative time left means "forever"),
        # and the serving cell polls it while interrupts arrive.
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._serving = 0
        self.kernel_loop = kernel_loop
        self.main_ident = threading.main_thread().ident
        #: When the agent last interrupted the main thread itself (a cell's timeout): an
        #: interrupt soon after is that one, not the user's.
        self._own_interrupt_at = -1e9

    def adopt_loop(self) -> None:
        """On the main thread, with the kernel running: remember its event loop (the
        extension may have loaded before the loop ran, from the kernel's config)."""
        if self.kernel_loop is None or self.kernel_loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.kernel_loop = asyncio.get_running_loop()

    @property
    def serving(self) -> bool:
        return self._serving > 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """While held (from before a turn is submitted until it has been served), work is
        queued for the cell to serve, never scheduled for after it."""
        self._serving += 1
        try:
            yield
        finally:
            self._serving -= 1

    def submit(
        self, fn: Callable[[], T], *, interruptible: bool = False
    ) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the main thread; its result (or error) in the future. While a cell
        serves it, an interrupt stops it only if ``interruptible`` (user code, a prompt),
        and then becomes :class:`Interrupted` (never a KeyboardInterrupt on the agent's
        loop)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        job = _Job(fn, future, interruptible)
        loop = self.kernel_loop
        if self.serving or loop is None or loop.is_closed():
            self._queue.put(job)
        else:
            loop.call_soon_threadsafe(self._run_job, job)
        return future

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the main thread, without waiting (rendering an event)."""
        self.submit(fn)

    def _run_job(self, job: _Job) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            job()

    def serve(
        self,
        done: concurrent.futures.Future[Any],
        on_interrupt: Callable[[], bool],
        poll: float = 0.05,
        give_up_after: float = 10.0,
    ) -> bool:
        """Run queued work until ``done`` is done; True if it is. A KeyboardInterrupt calls
        ``on_interrupt``; when that returns False, serving goes on for at most
        ``give_up_after`` seconds more (the agent may still need the main thread to stop),
        then ends."""
        give_up_at: float | None = None
        # An interrupt (SIGINT) raises KeyboardInterrupt only inside an interruptible job;
        # anywhere else in this loop it is counted and handled between jobs, so a second
        # interrupt can never land in the middle of handling the first (or of saving).
        state = {"pending": 0, "in_job": False, "seen": 0}

        def on_sigint(signum: int, frame: Any) -> None:
            state["seen"] += 1
            if state["in_job"]:
                state["in_job"] = False
                raise KeyboardInterrupt
            state["pending"] += 1

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            with self.hold():
                while not done.done():
                    while state["pending"]:
                        state["pending"] -= 1
                        if time.monotonic() - self._own_interrupt_at < OWN_INTERRUPT_WINDOW:
                            continue
                        if not on_interrupt() and give_up_at is None:
                            give_up_at = time.monotonic() + give_up_after
                    if give_up_at is not None and time.monotonic() > give_up_at:
                        return False
                    try:
                        job = self._queue.get(timeout=poll)
                    except queue.Empty:
                        continue
                    try:
                        state["in_job"] = job.interruptible
                        job()
                        state["in_job"] = False
                    except KeyboardInterrupt:
                        state["in_job"] = False
                        state["pending"] += 1
                        if not job.started:
                            self._queue.put(job)  # interrupted before it ran: it still must
                self.drain()
            if state["seen"]:
                # A person interrupting often presses twice: a second press arriving
                # just after the cell's work ended must not hit the kernel's own code
                # (it would lose the cell's reply). Absorbed here, for a moment.
                time.sleep(INTERRUPT_GRACE)
        finally:
            signal.signal(signal.SIGINT, previous)
        return True

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
        *,
        interruptible: bool = False,
    ) -> T:
        """From the agent's loop: run ``fn`` on the main thread and wait for it; after
        ``timeout`` seconds, ``on_timeout`` once (then keep waiting). ``interruptible``:
        user code or a prompt, which an interrupt stops (:meth:`submit`)."""
        future = asyncio.wrap_future(self.submit(fn, interruptible=interruptible))
        if timeout is None or on_timeout is None:
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            on_timeout()
            return await future
