"""Running one command through the launcher, as cancellation: at its timeout, or when the
task running it is cancelled (the user stops the turn), the command and every process it
started are ended, and the call returns at once with what was printed so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass

from .policy import SandboxPolicy

__all__ = ["CommandResult", "run_command"]

#: Bytes of output kept from the start and from the end (the middle is dropped).
KEEP = 1 << 20
#: Seconds the launcher gets to end the tree after SIGTERM, before SIGKILL to the group.
STOP_GRACE = 2.0
#: Seconds to wait for the last output once the command is gone.
DRAIN = 2.0


@dataclass
class CommandResult:
    output: str
    returncode: int | None
    timed_out: bool
    duration: float
    #: Bytes dropped from the middle of a very long output.
    dropped: int = 0


class _Collector:
    """Output as it comes, keeping the first and last :data:`KEEP` bytes."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = KEEP - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > KEEP:
                cut = len(self.tail) - KEEP
                self.dropped += cut
                del self.tail[:cut]

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes of output dropped ...]\n" if self.dropped else ""
        return self.head.decode("utf-8", "replace") + middle + self.tail.decode("utf-8", "replace")


async def run_command(
    policy: SandboxPolicy,
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    timeout: float,
) -> CommandResult:
    """Run ``argv`` under ``policy``; stdin is empty, stderr goes with stdout."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *policy.wrap(argv),
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    collected = _Collector()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            collected.add(chunk)

    reader = asyncio.ensure_future(pump())
    waiter = asyncio.ensure_future(proc.wait())
    timed_out = False
    try:
        await asyncio.wait({reader, waiter}, timeout=timeout)
        if not waiter.done():
            timed_out = True
            await _stop(proc)
    except asyncio.CancelledError:
        # The launcher ends the tree at once on SIGTERM; wait for it unless cancelled again
        # (then SIGKILL to the whole group, with no time to wait).
        _signal(proc, signal.SIGTERM)
        try:
            await asyncio.shield(_stop(proc))
        except asyncio.CancelledError:
            _kill_group(proc)
        raise
    finally:
        # The launcher has ended every process that could hold the output open: what is
        # left to read comes at once (a process that escaped gets DRAIN seconds).
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(reader), DRAIN)
        for task in (reader, waiter):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return CommandResult(
        collected.text(),
        proc.returncode,
        timed_out,
        time.monotonic() - started,
        collected.dropped,
    )


def _signal(proc: asyncio.subprocess.Process, signum: int) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """End the launcher and everything below it: SIGTERM asks the launcher to kill the
    tree; if it has not ended within STOP_GRACE, SIGKILL to its whole process group."""
    _signal(proc, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), STOP_GRACE)
    if proc.returncode is None:
        _kill_group(proc)
        await proc.wait()
