"""The headless runner: one real kernel per notebook, through nbclient and jupyter_client.

The kernel comes from the notebook's kernelspec (else ``python3``), runs with the
notebook's folder as its working directory, starts on the first run and shuts down at the
end. Outputs are stored in the cells as nbclient stores them (without timing metadata).

- A cell that runs past its timeout is interrupted (nbclient sends the interrupt); if the
  kernel ignores the interrupt for ``INTERRUPT_GRACE`` seconds more, it is restarted.
- A kernel that dies is reported (status ``dead``); the next run starts a fresh one.
- Cancelling a run (the user stops the agent) interrupts the kernel and waits for the cell
  to stop before the cancellation goes on, so the kernel is left usable.
- The kernel's environment is the user's, without the agent's own API key (see
  :func:`jupyter_codexmax.secrets.kernel_environment`).
- Given a sandbox policy (``CodexMax.sandbox_kernel``), the kernel is started through the
  sandbox's launcher, as shell commands are: its cells write only where commands may.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import CellRun, CellRunner, KernelError

if TYPE_CHECKING:
    from ..sandbox import SandboxPolicy

__all__ = ["HeadlessRunner", "remove_stale_folders"]

log = logging.getLogger("jupyter_codexmax.runners")

#: Seconds a kernel gets to stop after an interrupt before it is restarted.
INTERRUPT_GRACE = 10.0


#: The private folders kernels' sockets live in: ``<temp>/cxk-XXXX/``, with an owner file.
FOLDER_PREFIX = "cxk-"
OWNER_FILE = "owner"
_swept = False


def _owner_mark(pid: int) -> str | None:
    """``"<pid> <start time>"`` for a live process (its start time tells it from a later
    process given the same pid); None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return f"{pid} {fields[19]}"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass  # someone else's process: alive
    return f"{pid} ?"


def _owner_gone(folder: Path) -> bool:
    """Whether the process that made ``folder`` has ended (False when unsure)."""
    try:
        mark = (folder / OWNER_FILE).read_text("ascii").strip()
        pid = int(mark.split()[0])
    except (OSError, ValueError, IndexError):
        return False  # no owner file (yet, or an older version's folder): leave it
    now = _owner_mark(pid)
    if now is None:
        return True
    return not mark.endswith(" ?") and not now.endswith(" ?") and now != mark


def remove_stale_folders(root: str | None = None) -> list[Path]:
    """Remove the kernel folders of runs that ended without removing them (a killed run),
    once per process; returns what was removed."""
    global _swept
    if _swept and root is None:
        return []
    _swept = root is None
    removed: list[Path] = []
    base = Path(root or tempfile.gettempdir())
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(FOLDER_PREFIX)]
    except OSError:
        return removed
    for folder in candidates:
        with contextlib.suppress(OSError):
            if folder.is_dir() and not folder.is_symlink() and _owner_gone(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
                log.info("removed %s, left by a run that ended without removing it", folder)
    return removed


def import_nbclient() -> Any:
    """nbclient's ``NotebookClient``, imported without ``rfc3987_syntax`` where nothing has
    imported jsonschema yet.

    nbclient imports nbformat, which imports jsonschema, whose format checkers import
    ``rfc3987_syntax`` when it is installed (JupyterLab's dependencies bring it): that
    compiles a lark grammar at import, about 1.9 s of a headless run's 4.5 s here. Nothing a
    run does checks the ``iri`` formats it serves, so jsonschema is loaded without it (it
    then leaves those formats unchecked, as it does wherever the package is missing)."""
    hide = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if hide:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import fails
    try:
        from nbclient import NotebookClient
    finally:
        if hide and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]
    return NotebookClient


def make_folder() -> str:
    """A new private folder for a kernel's sockets, marked with its owner (stale ones of
    killed runs are removed first)."""
    remove_stale_folders()
    folder = tempfile.mkdtemp(prefix=FOLDER_PREFIX)
    Path(folder, OWNER_FILE).write_text(_owner_mark(os.getpid()) or "", "ascii")
    return folder


#: The file in a kernel's folder that gets its stderr.
STDERR_FILE = "stderr.log"


def last_words(path: str, limit: int = 300) -> str:
    """The last non-blank line a dead kernel wrote to ``path`` (its stderr), cut to
    ``limit`` characters; "" when it wrote nothing."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def ipython_in_sandbox(folder: str, env: dict[str, str]) -> list[str]:
    """Settle where a sandboxed IPython kernel keeps its files; returns its extra arguments.

    The kernel can write nowhere in the user's IPython folder (it is read-only in the
    sandbox, and IPython then falls back to a temp folder of its own with a warning; with
    no folder yet, a fresh home, it died trying to make one). So its ``IPYTHONDIR`` is a
    private folder beside its sockets, and it reads the user's profile (config files,
    startup files) where it is, read-only, through ``--profile-dir``: the subfolders
    IPython insists on making are made first, here, outside the sandbox."""
    user = env.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    private = os.path.join(folder, "ipython")
    os.makedirs(private, exist_ok=True)
    env["IPYTHONDIR"] = private
    profile = os.path.join(os.path.abspath(user), "profile_default")
    if not os.path.isdir(profile):
        return []  # nothing of the user's to read (a fresh home): IPython makes its own
    try:
        for sub, mode in (("security", 0o700), ("pid", 0o700), ("log", 0o777), ("startup", 0o777)):
            os.makedirs(os.path.join(profile, sub), mode=mode, exist_ok=True)
    except OSError as exc:
        log.warning("the kernel does not read the IPython profile %s: %s", profile, exc)
        return []
    return [f"--profile-dir={profile}"]


def _kernel_name(nb: Any) -> str:
    spec = nb.metadata.get("kernelspec") if isinstance(nb.metadata, dict) else None
    name = spec.get("name") if isinstance(spec, dict) else None
    return str(name) if name else "python3"


class _GoneKernelClient:
    """Stands in for a discarded kernel client: the kernel is not alive."""

    async def is_alive(self) -> bool:
        return False

    def stop_channels(self) -> None:
        return None


class HeadlessRunner(CellRunner):
    """A kernel for one notebook, started on first use."""

    def __init__(
        self,
        notebook_path: Path,
        nb: Any,
        *,
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
        kernel_name: str | None = None,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        self.notebook_path = notebook_path
        self.sandbox = sandbox
        self.nb = nb
        self.env = env
        self.startup_timeout = startup_timeout
        self._kernel_name = kernel_name or _kernel_name(nb)
        meta = nb.metadata if isinstance(nb.metadata, dict) else {}
        found = meta.get("kernelspec"), meta.get("language_info")
        spec: dict[str, Any] = found[0] if isinstance(found[0], dict) else {}
        info: dict[str, Any] = found[1] if isinstance(found[1], dict) else {}
        language = (
            spec.get("language")
            or info.get("name")
            or ("python" if self._kernel_name.startswith("python") else "")
        )
        #: The notebook's language, as its metadata says.
        self.language = str(language).lower()
        #: Something the model should know about the kernel (a stand-in kernel).
        self.note = ""
        self._client: Any = None
        self._tmp: str | None = None
        self.starts = 0

    @property
    def kernel_name(self) -> str:
        return self._kernel_name

    @property
    def started(self) -> bool:
        return self._client is not None

    def _resolve_kernel(self) -> str:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        manager = KernelSpecManager()
        try:
            manager.get_kernel_spec(self._kernel_name)
            return self._kernel_name
        except NoSuchKernel:
            available = sorted(manager.find_kernel_specs())
            # Another Python kernel (a conda env's name, "Python [Root]") can stand in for
            # a missing Python kernelspec; a notebook in another language cannot be run.
            if self.language == "python" and "python3" in available:
                self.note = (
                    f"the notebook's kernel {self._kernel_name!r} is not installed; "
                    "its cells run in the python3 kernel"
                )
                log.warning("%s", self.note)
                return "python3"
            language = self.language or "language unknown"
            choices = ", ".join(available) or "none"
            raise KernelError(
                f"the notebook's kernel {self._kernel_name!r} ({language}) is not installed "
                f"here (available: {choices}); its cells cannot be run"
            ) from None

    async def _start(self) -> Any:
        NotebookClient = import_nbclient()
        name = self._resolve_kernel()
        # ipc sockets in a short private folder: no TCP ports, and no "running over TCP
        # without encryption" message from the kernel. The connection file goes there too,
        # and the folder says which process owns it, so a later run can remove it if this
        # one is killed before it does.
        self._tmp = make_folder()
        km = _kernel_manager(self.sandbox)(
            kernel_name=name,
            transport="ipc",
            ip=os.path.join(self._tmp, "k"),
            connection_file=os.path.join(self._tmp, "kernel.json"),
        )
        env = dict(os.environ) if self.env is None else dict(self.env)
        extra: list[str] = []
        if self.sandbox is not None and km.ipykernel:
            extra = ipython_in_sandbox(self._tmp, env)
        client = NotebookClient(
            self.nb,
            km=km,
            kernel_name=name,
            allow_errors=True,
            interrupt_on_timeout=True,
            record_timing=False,
            startup_timeout=int(self.startup_timeout),
            resources={"metadata": {"path": str(self.notebook_path.parent)}},
            extra_arguments=extra,
        )
        # The kernel's own stderr (and the sandbox launcher's) goes to a file in its
        # folder: if it dies at start, its last line says why.
        stderr_path = os.path.join(self._tmp, STDERR_FILE)
        stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                await client.async_start_new_kernel(
                    cwd=str(self.notebook_path.parent), env=env, stderr=stderr
                )
            finally:
                os.close(stderr)
            await client.async_start_new_kernel_client()
        except BaseException as exc:
            # Also when the start is cancelled (a stop, a time limit): never leave a
            # kernel process behind.
            said = last_words(stderr_path)
            await asyncio.shield(self._cleanup(client))
            if isinstance(exc, Exception):
                where = " in the sandbox" if self.sandbox is not None else ""
                cause = f"it exited at start{where}: {said}" if said else str(exc)
                hint = (
                    " (--CodexMax.sandbox_kernel=False starts it unconfined)"
                    if said and self.sandbox is not None
                    else ""
                )
                raise KernelError(f"could not start the {name} kernel: {cause}{hint}") from exc
            raise
        self.starts += 1
        self._kernel_name = name
        return client

    async def _ensure(self) -> Any:
        if self._client is None:
            self._client = await self._start()
        return self._client

    async def run(self, doc: Any, index: int, timeout: float) -> CellRun:
        cell = doc.nb.cells[index]
        cell_id = doc.cell_id(index)
        if cell.get("cell_type") != "code" or not str(cell.get("source", "")).strip():
            return CellRun(cell_id, "skipped", 0.0, note="not a code cell, or empty")
        client = await self._ensure()
        from nbclient.exceptions import DeadKernelError  # imported by _ensure's start

        client.timeout = max(1, round(timeout))
        client._display_id_map = {}  # display ids belong to this run's cells only
        started = time.monotonic()
        task = asyncio.ensure_future(client.async_execute_cell(cell, index))
        # Its failure is read below; when the run is torn down around it (Ctrl-C, SIGTERM),
        # nobody may: marked as seen, so asyncio does not print it as a stray traceback.
        task.add_done_callback(_seen)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout + INTERRUPT_GRACE)
        except asyncio.CancelledError:
            if not await asyncio.shield(self._stop_task(client, task)):
                # It ignored the interrupt: a fresh kernel, so the next run is not stuck.
                await asyncio.shield(self._discard())
            raise
        duration = time.monotonic() - started
        if not done:
            await self._stop_task(client, task)
            await self.restart()
            return CellRun(
                cell_id,
                "timeout",
                duration,
                note=f"still running {INTERRUPT_GRACE:g} s after the interrupt at "
                f"{timeout:g} s; the kernel was restarted (its variables "
                "are gone)",
            )
        try:
            task.result()
        except DeadKernelError:
            await self._discard()
            return CellRun(
                cell_id,
                "dead",
                duration,
                outputs=list(cell.get("outputs") or []),
                note="the kernel died while running this cell; its variables are "
                "gone, and the next run starts a fresh kernel",
            )
        except Exception as exc:  # nbclient's own failures: report, keep going
            await self._discard()
            return CellRun(cell_id, "dead", duration, note=f"the kernel failed: {exc}")
        return self._result(cell, cell_id, duration, timeout)

    def _result(self, cell: Any, cell_id: str, duration: float, timeout: float) -> CellRun:
        outputs = list(cell.get("outputs") or [])
        error = next((o for o in outputs if o.get("output_type") == "error"), None)
        run = CellRun(cell_id, "ok", duration, cell.get("execution_count"), outputs)
        if error is not None:
            run.error_name = str(error.get("ename", ""))
            run.error_value = str(error.get("evalue", ""))
            run.traceback = [str(t) for t in error.get("traceback") or []]
            timed_out = run.error_name == "KeyboardInterrupt" and duration >= timeout
            run.status = "timeout" if timed_out else "error"
            if timed_out:
                run.note = f"interrupted after {timeout:g} s (the cell's time limit)"
        return run

    async def _stop_task(self, client: Any, task: asyncio.Future[Any]) -> bool:
        """Interrupt the kernel and give the cell ``INTERRUPT_GRACE`` to stop; False when
        it did not (the kernel is still busy)."""
        if task.done():
            return True
        with contextlib.suppress(Exception):
            await client.km.interrupt_kernel()
        try:
            await asyncio.wait_for(asyncio.shield(task), INTERRUPT_GRACE)
        except asyncio.TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return False
        except Exception:
            return True
        return True

    async def restart(self) -> None:
        await self._discard()
        self._client = await self._start()

    async def _discard(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._cleanup(client)

    async def _cleanup(self, client: Any) -> None:
        with contextlib.suppress(Exception):
            client.shutdown_kernel = "immediate"
            if client.km is not None:
                await client._async_cleanup_kernel()
        # nbclient leaves a watcher task polling ``kc.is_alive()`` every second when a
        # cell's execution is abandoned; with the client gone it would fail. A stand-in
        # that reports the kernel dead lets it end the way nbclient means it to.
        client.kc = _GoneKernelClient()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def shutdown(self) -> None:
        await self._discard()


def _seen(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _kernel_manager(sandbox: SandboxPolicy | None) -> Any:
    """jupyter_client's kernel manager; with a policy, one that starts the kernel's command
    through the sandbox's launcher (interrupts still reach the kernel: they go to its
    process group)."""
    from jupyter_client.manager import AsyncKernelManager

    if sandbox is None:
        return AsyncKernelManager
    policy = sandbox

    class SandboxedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return policy.wrap(super().format_kernel_cmd(extra_arguments))

    return SandboxedKernelManager
