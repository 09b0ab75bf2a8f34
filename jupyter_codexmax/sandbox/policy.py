"""What the sandbox allows (a :class:`SandboxPolicy`), what this machine can enforce (a
probe of the launcher, once per process), and the one line that says which is in force
(:class:`SandboxStatus`, shown by ``doctor``, the panel, the run's summary and report).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .protect import (
    data_folder,
    home_in,
    is_protected,
    program_folders,
    protected_paths,
    session_sockets,
    split_home,
    writable_paths,
)

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..workspace import Workspace

__all__ = [
    "Capabilities",
    "SandboxPolicy",
    "SandboxStatus",
    "command_policy",
    "data_folder",
    "is_protected",
    "probe",
    "protected_paths",
    "sandbox_status",
    "temp_folders",
    "writable_folders",
]

LAUNCHER = "jupyter_codexmax.sandbox.exec"


@dataclass(frozen=True)
class SandboxPolicy:
    """What a sandboxed process may do. ``landlock`` False: nothing is confined (only the
    process tree is ended with the command)."""

    landlock: bool = False
    namespaces: bool = False
    network: bool = False
    write: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()
    #: Folders whose contents the process does not see at all (an empty read-only folder
    #: in their place): this project's data (the session journal, the key that marks the
    #: sessions this machine wrote), which a command could otherwise read, and forge marks.
    hidden: tuple[str, ...] = ()
    #: Every mount but the writable roots read-only (with namespaces): what Landlock does
    #: not fence, changes of metadata (permissions, owner, times, extended attributes),
    #: is refused there too.
    read_only_mounts: bool = False
    #: Writable roots that are or hold the home folder ``home``: the launcher writes
    #: beside its dotfiles only (:func:`~.protect.split_home`, done there: the home
    #: folder's entries could be more than one argument holds).
    beside_home: tuple[str, ...] = ()
    home: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("write", "read_only", "hidden", "beside_home"):
            data[name] = list(data[name])
        return json.dumps(data)

    def writable(self) -> list[str]:
        """Every folder (or file) the process may write: ``write``, and ``beside_home``
        split around the home folder's dotfiles."""
        return writable_paths(self.write, self.beside_home, self.home)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run through the launcher (Linux; elsewhere ``argv`` as it is)."""
        if not sys.platform.startswith("linux"):
            return list(argv)
        return [*launcher(), self.to_json(), "--", *argv]


def launcher() -> list[str]:
    """The command that starts the launcher. It runs before the sandbox is set up, in the
    command's working folder, so it imports nothing from there: not ``python -m`` (which
    puts the working folder first on ``sys.path``, where a ``json.py`` of the workspace
    would run unconfined), but ``-I -S`` (no working folder, ``PYTHONPATH``, user site or
    ``.pth`` files) with ``sys.path`` set to the standard library and the two packages it
    needs (see :func:`program_folders`)."""
    paths = [str(folder.parent) for folder in reversed(program_folders()[1:])]
    code = (
        f"import sys; sys.path += {paths!r}; import runpy; "
        f"runpy.run_module({LAUNCHER!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-I", "-S", "-c", code]


@dataclass(frozen=True)
class Capabilities:
    """What the launcher could set up on this machine."""

    landlock: int = 0
    namespaces: bool = False
    user_namespace: bool = False
    network_namespace: bool = False
    read_only: bool = False
    proc: bool = False
    problem: str = ""


@dataclass(frozen=True)
class SandboxStatus:
    """Whether commands are confined, and the line that says how."""

    active: bool
    summary: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    network: bool = False

    def describe(self) -> str:
        return ("on: " if self.active else "off: ") + self.summary


@lru_cache(maxsize=1)
def probe() -> Capabilities:
    """Run the launcher once in probe mode (about 0.1 s) and read what it could set up."""
    if not sys.platform.startswith("linux"):
        return Capabilities(problem="the sandbox needs Linux (Landlock)")
    with tempfile.TemporaryDirectory(prefix="cxsbx-") as folder:
        target = Path(folder, "ro")
        target.mkdir()
        policy = SandboxPolicy(True, True, False, (folder,), (str(target),), read_only_mounts=True)
        try:
            done = subprocess.run(
                [*launcher(), "--probe", policy.to_json()],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            return Capabilities(problem=f"the sandbox launcher did not run ({exc})")
    namespaces = found.get("namespaces") is True
    problem = str(found.get("landlock_error") or "")
    if not namespaces:
        problem = problem or str(found.get("namespaces") or "")
    return Capabilities(
        landlock=int(found.get("landlock") or 0),
        namespaces=namespaces,
        user_namespace=bool(found.get("user_namespace")),
        network_namespace=bool(found.get("network_namespace")),
        read_only=namespaces and found.get("read_only") is True,
        proc=bool(found.get("proc")),
        problem=problem,
    )


def sandbox_status(settings: CodexMax) -> SandboxStatus:
    if not settings.sandbox:
        return SandboxStatus(False, "turned off (CodexMax.sandbox)")
    caps = probe()
    if caps.landlock < 1:
        why = caps.problem or "Landlock is not available in this kernel"
        return SandboxStatus(False, f"not available here ({why})", caps)
    where = "only in the workspace and temp folders"
    if caps.read_only:
        parts = [f"Landlock ABI {caps.landlock}, writes (permissions and times too) {where}"]
        parts.append(".git read-only")
    else:
        parts = [
            f"Landlock ABI {caps.landlock}, writes {where} (permissions and times not fenced)",
            f".git writable by commands (no mount namespace: {caps.problem})",
        ]
    if settings.sandbox_network:
        parts.append("network allowed")
    elif caps.network_namespace:
        parts.append("no network")
    elif caps.landlock >= 4:
        parts.append("TCP denied (UDP allowed: no network namespace)")
    else:
        parts.append("network not confined")
    parts.append("own PID namespace" if caps.namespaces else "process tree ended by a subreaper")
    return SandboxStatus(True, ", ".join(parts), caps, settings.sandbox_network)


def temp_folders() -> list[Path]:
    """The temp folders commands may write: ``TMPDIR`` (or the system's), ``/tmp`` and
    ``/dev/shm`` (shared memory, used by multiprocessing)."""
    found = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/dev/shm")]
    out: list[Path] = []
    for folder in found:
        if folder.is_dir():
            resolved = folder.resolve()
            if resolved not in out:
                out.append(resolved)
    return out


def extra_roots(settings: CodexMax) -> list[Path]:
    """The folders of ``sandbox_writable_roots`` that exist, resolved."""
    found = []
    for extra in settings.sandbox_writable_roots:
        folder = Path(os.path.expanduser(extra))
        if folder.is_dir():
            found.append(folder.resolve())
    return found


def writable_folders(settings: CodexMax) -> list[Path]:
    """Where commands may write besides the workspace: the temp folders and
    ``sandbox_writable_roots`` (what the pattern guard lets a command change)."""
    return [*temp_folders(), *extra_roots(settings)]


def jupyter_runtime() -> Path | None:
    """Jupyter's runtime folder, when it is a folder (resolved), else None."""
    from jupyter_core.paths import jupyter_runtime_dir

    try:
        path = Path(jupyter_runtime_dir()).resolve()
    except (OSError, RuntimeError):
        return None
    return path if path.is_dir() and path != Path("/") else None


def command_policy(
    settings: CodexMax, workspace: Workspace, status: SandboxStatus | None = None
) -> SandboxPolicy:
    """The policy for the agent's shell commands (and a headless kernel): write in the
    workspace, the temp folders and ``sandbox_writable_roots``, but not the home folder's
    top level where the workspace holds it (:func:`~.protect.split_home`); what
    :func:`~.protect.protected_paths` names read-only; this project's data and the
    sockets of the user's session (:func:`~.protect.session_sockets`) hidden; the
    network as ``sandbox_network`` says."""
    status = status or sandbox_status(settings)
    if not status.active:
        return SandboxPolicy()
    temps = temp_folders()
    roots = [workspace.root, *extra_roots(settings)]
    beside_home = [r for r in roots if home_in(r) is not None]
    plain = [r for r in roots if r not in beside_home]
    plain += [t for t in temps if t not in plain]
    home = home_in(beside_home[0]) if beside_home else None
    write = [*plain, *split_home(beside_home, home=home)]
    # Made now if missing (a first run), so it is hidden from this command too: else a
    # command run beside the first session (--jobs) could read the key it writes there.
    data = data_folder()
    with contextlib.suppress(OSError):
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
    read_only: list[Path] = []
    hidden: list[Path] = []
    if status.capabilities.read_only:
        in_write = set(write)
        for path in protected_paths(workspace):
            inside = any(p in in_write for p in (path, *path.parents))
            if inside and os.path.lexists(path) and path not in read_only:
                read_only.append(path)
        hidden = [data] if data.is_dir() else []
        # Jupyter's runtime folder: the connection files (address and signing key) of the
        # user's kernels and servers. With one, a command (with the network allowed) could
        # run code in a kernel outside the sandbox.
        runtime = jupyter_runtime()
        if runtime is not None and not workspace.contains(runtime):
            hidden.append(runtime)
        # Not the workspace, nor a folder holding it (nothing of it would be seen).
        hidden += [
            p
            for p in session_sockets(temps)
            if not workspace.contains(p) and p not in workspace.root.parents
        ]
    return SandboxPolicy(
        landlock=True,
        namespaces=status.capabilities.namespaces,
        network=settings.sandbox_network,
        write=tuple(str(p) for p in plain),
        beside_home=tuple(str(p) for p in beside_home),
        home=str(home or ""),
        read_only=tuple(str(p) for p in read_only if p not in hidden),
        hidden=tuple(str(p) for p in hidden),
        read_only_mounts=status.capabilities.read_only,
    )
