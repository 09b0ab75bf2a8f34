"""What the sandbox allows (a :class:`SandboxPolicy`), what this machine can enforce (a
probe of the launcher, once per process), and the one line that says which is in force
(:class:`SandboxStatus`, shown by ``doctor``, the panel, the run's summary and report).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..workspace import Workspace

__all__ = [
    "Capabilities",
    "SandboxPolicy",
    "SandboxStatus",
    "command_policy",
    "data_folder",
    "probe",
    "protected_paths",
    "sandbox_status",
    "temp_folders",
]

LAUNCHER = "jupyter_codexmax.sandbox.exec"

#: Names the file tools never change and commands see read-only, wherever they are.
PROTECTED_NAMES = frozenset({".git"})


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

    def to_json(self) -> str:
        data = asdict(self)
        data["write"], data["read_only"] = list(self.write), list(self.read_only)
        data["hidden"] = list(self.hidden)
        return json.dumps(data)

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


@lru_cache(maxsize=1)
def program_folders() -> tuple[Path, ...]:
    """The agent's own program: the Python environment running it (``sys.prefix``), and
    the folders of this package and of landlockpy (the launcher's code). A command that
    could change them would run its code unconfined at the next start of the launcher or
    of the agent: where they are in a writable folder, they are read-only."""
    import importlib.util

    found = [Path(sys.prefix).resolve(), Path(__file__).resolve().parents[1]]
    spec = importlib.util.find_spec("landlockpy")
    if spec is not None and spec.origin:
        found.append(Path(spec.origin).resolve().parent)
    return tuple(found)


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


def data_folder() -> Path:
    """This project's folder in the Jupyter data folder (the session journal, its index)."""
    from ..session.journal import journal_folder

    return journal_folder().parent


def protected_paths(workspace: Workspace) -> list[Path]:
    """Paths inside the workspace that nothing the agent runs may change: its ``.git``."""
    return [workspace.root / name for name in sorted(PROTECTED_NAMES)]


def is_protected(path: Path, workspace: Workspace) -> str | None:
    """Why the file tools must not change ``path`` (resolved), or None: a ``.git`` folder or
    file anywhere in the workspace, or the project's own data (the session journal)."""
    try:
        parts = path.relative_to(workspace.root).parts
    except ValueError:
        parts = path.parts
    for part in parts:
        if part.lower() in PROTECTED_NAMES:
            return f"{part} is read-only for the agent (version control data)"
    data = data_folder()
    data = data.resolve() if data.exists() else data
    if path == data or data in path.parents:
        return "the session journal is read-only for the agent"
    return None


def command_policy(
    settings: CodexMax, workspace: Workspace, status: SandboxStatus | None = None
) -> SandboxPolicy:
    """The policy for the agent's shell commands (and a headless kernel): write in the
    workspace, the temp folders and ``sandbox_writable_roots``; ``.git`` and the session
    journal read-only; the network as ``sandbox_network`` says."""
    status = status or sandbox_status(settings)
    if not status.active:
        return SandboxPolicy()
    write = [workspace.root, *temp_folders()]
    for extra in settings.sandbox_writable_roots:
        folder = Path(os.path.expanduser(extra))
        if folder.is_dir():
            write.append(folder.resolve())
    read_only: list[Path] = []
    if status.capabilities.read_only:
        candidates = [*protected_paths(workspace), data_folder()]
        for path in candidates:
            inside = any(path == root or root in path.parents for root in write)
            if inside and os.path.lexists(path):
                read_only.append(path)
    hidden = [data_folder()] if status.capabilities.read_only else []
    return SandboxPolicy(
        landlock=True,
        namespaces=status.capabilities.namespaces,
        network=settings.sandbox_network,
        write=tuple(str(p) for p in write),
        read_only=tuple(str(p) for p in read_only if p not in hidden),
        hidden=tuple(str(p) for p in hidden if p.is_dir()),
        read_only_mounts=status.capabilities.read_only,
    )
