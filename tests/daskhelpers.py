"""A real Dask cluster on loopback for tests: ``dask scheduler`` and ``dask worker``
processes, their output captured to files, every process (and what it started) ended at
teardown, also when the test fails.

The scheduler loads :data:`CAPTURE` (``--preload``): a scheduler plugin that writes every
task it is given, pickled as Dask sends it on to a worker, to ``tasks.bin``, so a test can
look for a secret in what travelled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def hiding(folder: Path) -> list[str]:
    """A command prefix: what follows runs with ``folder`` hidden under an empty tmpfs."""
    mount = 'mount -t tmpfs none "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, str(folder)]


def can_hide() -> bool:
    """Whether :func:`hiding` works here."""
    import shutil

    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        [*hiding(Path("/mnt")), "true"], capture_output=True, timeout=10, check=False
    )
    return probe.returncode == 0


CAPTURE = """
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.protocol import pickle

OUT = {out!r}


class Capture(SchedulerPlugin):
    def update_graph(self, scheduler, *, keys, **kwargs):
        with open(OUT, "ab") as f:
            for key in keys:
                task = scheduler.tasks.get(key)
                if task is not None and task.run_spec is not None:
                    f.write(pickle.dumps(task.run_spec) + b"\\n--\\n")


def dask_setup(scheduler):
    scheduler.add_plugin(Capture())
"""


class Cluster:
    """A scheduler and ``workers`` worker processes (no nanny: a worker is one process)."""

    def __init__(
        self, folder: Path, env: dict[str, str], workers: int = 2, *, hide: Path | None = None
    ) -> None:
        #: A folder the last worker does not see: it runs in a mount namespace of its own,
        #: with an empty file system mounted there (root and unshare(1) needed).
        self.hide = hide
        self.folder = folder
        self.env = env
        self.count = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.workers: dict[str, subprocess.Popen[bytes]] = {}  # address: process
        self.address = ""
        self.tasks = folder / "tasks.bin"

    def _start(self, name: str, args: list[str], prefix: list[str] = ()) -> subprocess.Popen[bytes]:  # type: ignore[assignment]
        log = self.folder / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*prefix, str(BIN / "dask"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd="/",
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def start(self) -> Cluster:
        preload = self.folder / "capture_tasks.py"
        preload.write_text(CAPTURE.format(out=str(self.tasks)))
        info = self.folder / "scheduler.json"
        self._start(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
                "--preload",
                str(preload),
            ],
        )
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            self._alive_or_fail(deadline)
        self.address = json.loads(info.read_text())["address"]
        pending = []
        for n in range(self.count):
            pending.append(
                self._start(
                    f"worker{n}",
                    [
                        "worker",
                        self.address,
                        "--no-nanny",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--name",
                        f"w{n}",
                    ],
                    hiding(self.hide) if self.hide and n == self.count - 1 else [],
                )
            )
        for n, proc in enumerate(pending):
            log = self.folder / f"worker{n}.log"
            while not (match := re.search(r"Start worker at:\s+(tcp://\S+)", log.read_text())):
                self._alive_or_fail(deadline)
            self.workers[match.group(1)] = proc
        return self

    def _alive_or_fail(self, deadline: float) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"{log.name} ended ({proc.returncode}): {log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError("the Dask cluster did not start within 60 s")
        time.sleep(0.1)

    def descendants(self, proc: subprocess.Popen[bytes]) -> list[int]:
        import psutil

        with contextlib.suppress(psutil.Error):
            return [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        return []

    def kill(self, address: str) -> list[int]:
        """SIGKILL the worker at ``address``; the processes it had started (kernels)."""
        proc = self.workers[address]
        children = self.descendants(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return children

    def output(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def stop(self, extra: list[int] = ()) -> None:  # type: ignore[assignment]
        pids = list(extra)
        for proc in self.procs:
            pids += self.descendants(proc)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def cluster_env(home: Path, key_variable: str = "", key: str = "") -> dict[str, str]:
    """An environment for the cluster's processes: this one's (isolated by the tests'
    fixture), with the API key only where asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DASK_"))}
    env["HOME"] = str(home)
    if key_variable:
        env[key_variable] = key
    return env
