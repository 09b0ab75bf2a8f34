"""One limit on model requests for many agents: at most N at once, and one backoff for all.

With ``--max-concurrent-requests N`` every model request of every notebook of a run first
waits for the shared *backoff deadline* (set when any request got HTTP 429: the server said
too many requests, so every agent waits, not only the one that was told), then takes one of
N leases, holds it while the response streams, and gives it back. A request that is retried
keeps its lease; before the retry it waits for the later of its own delay and the shared
deadline.

Two engines behind one interface (:class:`Limiter`):

- :class:`LocalLimiter`: an ``asyncio.Semaphore`` and a number, for the notebooks of one
  process (``--executor local``);
- :class:`DaskLimiter`: a ``distributed.Semaphore`` (leases kept by the scheduler, given
  back by the scheduler when a worker dies) and a ``distributed.Variable`` holding the
  deadline (wall-clock seconds), for every worker of a cluster (``--executor dask``).

:class:`LimitedProvider` wraps any provider with a limiter: the agent does not know.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from ..providers.base import (
    CompactResult,
    EndpointCheck,
    ModelRequest,
    ModelStream,
    Provider,
    Retrying,
    StreamEvent,
)

__all__ = ["DaskLimiter", "LimitedProvider", "Limiter", "LocalLimiter"]


class Limiter(abc.ABC):
    """At most N requests at once, and a backoff deadline every request waits for."""

    @abc.abstractmethod
    async def acquire(self) -> None:
        """Take a lease (wait for one)."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Give the lease back."""

    @abc.abstractmethod
    async def deadline(self) -> float:
        """The shared backoff deadline (``time.time()`` seconds; 0: none)."""

    @abc.abstractmethod
    async def push_deadline(self, until: float) -> None:
        """Move the deadline to ``until`` if that is later."""

    async def wait_for_deadline(self, already: float = 0.0) -> float:
        """Sleep until the shared deadline, less ``already`` seconds the caller waits anyway;
        returns the seconds slept."""
        extra = await self.deadline() - time.time() - already
        if extra > 0:
            await asyncio.sleep(extra)
            return extra
        return 0.0


class LocalLimiter(Limiter):
    """The limit for the notebooks of one process."""

    def __init__(self, max_requests: int) -> None:
        self.max_requests = max_requests
        self._semaphore = asyncio.Semaphore(max_requests)
        self._deadline = 0.0

    async def acquire(self) -> None:
        await self._semaphore.acquire()

    async def release(self) -> None:
        self._semaphore.release()

    async def deadline(self) -> float:
        return self._deadline

    async def push_deadline(self, until: float) -> None:
        self._deadline = max(self._deadline, until)


class DaskLimiter(Limiter):
    """The limit for every worker of a Dask cluster, kept by its scheduler under ``name``.

    Built inside a task (it needs the worker): the semaphore and the variable are found by
    name, so only the name and N travel with the task. Dask's calls block, so they run in
    a thread, off the agent's event loop."""

    def __init__(self, name: str, max_requests: int) -> None:
        from distributed import Semaphore, Variable, get_client, get_worker

        worker = get_worker()
        self.max_requests = max_requests
        self._semaphore = Semaphore(
            max_leases=max_requests,
            name=name,
            scheduler_rpc=worker.scheduler,
            loop=worker.loop,
        )
        self._semaphore.register()
        self._variable = Variable(f"{name}-backoff", client=get_client())

    async def acquire(self) -> None:
        await asyncio.to_thread(self._semaphore.acquire)

    async def release(self) -> None:
        await asyncio.to_thread(self._semaphore.release)

    async def deadline(self) -> float:
        def read() -> float:
            try:
                return float(self._variable.get(timeout=5))
            except (TimeoutError, asyncio.TimeoutError, ValueError, TypeError):
                return 0.0  # not set (yet): no backoff

        return await asyncio.to_thread(read)

    async def push_deadline(self, until: float) -> None:
        # Read, then write the later value: two workers told at once may each write their
        # own, and the later write wins; both are near each other, so either slows everyone.
        if until > await self.deadline():
            await asyncio.to_thread(self._variable.set, until)


class LimitedProvider(Provider):
    """``inner``, with every request going through ``limiter``."""

    def __init__(self, inner: Provider, limiter: Limiter) -> None:
        super().__init__(inner.settings)
        self.inner = inner
        self.limiter = limiter
        self.name = inner.name
        #: Seconds requests waited for others' backoff (for the report and the tests).
        self.waited = 0.0

    @property
    def supports_remote_compaction(self) -> bool:
        return self.inner.supports_remote_compaction

    def stream(self, request: ModelRequest) -> ModelStream:
        # The inner stream validates the request now (nothing is sent until iterated).
        return ModelStream(self._limited(self.inner.stream(request)))

    async def _limited(self, stream: ModelStream) -> AsyncGenerator[StreamEvent, None]:
        self.waited += await self.limiter.wait_for_deadline()
        await self.limiter.acquire()
        try:
            async with stream:
                async for event in stream:
                    if isinstance(event, Retrying):
                        if event.rate_limited:
                            await self.limiter.push_deadline(time.time() + event.delay)
                        yield event
                        # The stream sleeps its own delay next; add what others were told.
                        self.waited += await self.limiter.wait_for_deadline(event.delay)
                        continue
                    yield event
        finally:
            await asyncio.shield(self.limiter.release())

    async def compact(self, request: ModelRequest) -> CompactResult:
        self.waited += await self.limiter.wait_for_deadline()
        await self.limiter.acquire()
        try:
            return await self.inner.compact(request)
        finally:
            await asyncio.shield(self.limiter.release())

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        return self.inner.build_body(request)

    async def check_endpoint(self) -> EndpointCheck:
        return await self.inner.check_endpoint()

    async def aclose(self) -> None:
        await self.inner.aclose()
