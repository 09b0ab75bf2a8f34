"""What nothing the agent runs may change, though it lies in a folder the agent may write:

- ``.git``, anywhere in the workspace (its hooks run on the user's next commit);
- this project's own data: the session journal and the key that marks the sessions this
  machine wrote (:func:`data_folder`);
- IPython's and Jupyter's own folders (:func:`config_folders`): startup files, config
  files, kernelspecs and extensions are code that runs when a kernel or a server starts;
- the agent's own program (:func:`program_folders`): the Python environment running it and
  the launcher's code, which would otherwise run a command's changes unconfined;
- when the workspace is the user's home folder or holds it, the home folder's dotfiles and
  dot-folders (shell start files, ``.ssh``, ``.config``, ``.local``, ``.ipython``...).

The file tools refuse them all (:func:`is_protected`). The sandbox makes those that exist
read-only (the policy's ``read_only``), and leaves the home folder's top level out of the
writable folders (:func:`split_home`), so that a dotfile that does not exist yet cannot be
made either.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = [
    "PROTECTED_NAMES",
    "config_folders",
    "data_folder",
    "home_in",
    "is_protected",
    "program_folders",
    "protected_paths",
    "session_sockets",
    "split_home",
    "writable_paths",
]

#: Names the file tools never change and commands see read-only, wherever they are.
PROTECTED_NAMES = frozenset({".git"})

HOME_NOTE = "the workspace is your home folder: its dotfiles are read-only for the agent"


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def data_folder() -> Path:
    """This project's folder in the Jupyter data folder (the session journal, its index,
    the key that marks sessions)."""
    from ..session.journal import journal_folder

    return journal_folder().parent


def config_folders() -> list[Path]:
    """IPython's folder (``IPYTHONDIR``, else ``~/.ipython``) and Jupyter's config and data
    folders (``jupyter --paths``: the user's own, where kernelspecs and extensions go)."""
    from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir

    ipython = os.environ.get("IPYTHONDIR") or os.path.join("~", ".ipython")
    found = [os.path.expanduser(ipython), jupyter_config_dir(), jupyter_data_dir()]
    return [_resolved(Path(p)) for p in found]


@lru_cache(maxsize=1)
def program_folders() -> tuple[Path, ...]:
    """The agent's own program: the Python environment running it (``sys.prefix``), and
    the folders of this package and of landlockpy (the launcher's code). A command that
    could change them would have its code run unconfined at the next start of the launcher
    or of the agent: where they are in a writable folder, they are read-only."""
    import importlib.util

    found = [_resolved(Path(sys.prefix)), Path(__file__).resolve().parents[1]]
    spec = importlib.util.find_spec("landlockpy")
    if spec is not None and spec.origin:
        found.append(Path(spec.origin).resolve().parent)
    return tuple(found)


def home_in(root: Path, home: Path | None = None) -> Path | None:
    """The user's home folder (resolved; or ``home``) when ``root`` is it or holds it,
    else None."""
    if home is None:
        try:
            home = Path.home().resolve()
        except (OSError, RuntimeError):
            return None
    if home == root or root in home.parents:
        return home
    return None


def protected_paths(workspace: Workspace) -> list[Path]:
    """What commands must see read-only where it exists in a writable folder: the
    workspace's ``.git``, this project's data, IPython's and Jupyter's folders, the agent's
    own program, and the home folder's dotfiles."""
    found = [workspace.root / name for name in sorted(PROTECTED_NAMES)]
    found += [data_folder(), *config_folders(), *program_folders()]
    try:
        home = Path.home().resolve()
        found += [p for p in home.iterdir() if p.name.startswith(".")]
    except (OSError, RuntimeError):
        pass
    return found


def is_protected(path: Path, workspace: Workspace) -> str | None:
    """Why the file tools must not change ``path`` (resolved), or None."""
    try:
        parts = path.relative_to(workspace.root).parts
    except ValueError:
        parts = path.parts
    for part in parts:
        if part.lower() in PROTECTED_NAMES:
            return f"{part} is read-only for the agent (version control data)"
    home = home_in(workspace.root)
    if home is not None and home in path.parents:
        first = path.relative_to(home).parts[0]
        if first.startswith("."):
            return f"{first} is read-only for the agent ({HOME_NOTE})"
    if _under(path, [data_folder()]):
        return "the session journal is read-only for the agent"
    if _under(path, config_folders()):
        return (
            "IPython's and Jupyter's folders are read-only for the agent (code there runs "
            "when a kernel or a server starts)"
        )
    if _under(path, program_folders()):
        return "the Python environment that runs the agent is read-only for the agent"
    return None


def _under(path: Path, folders: Iterable[Path]) -> bool:
    for folder in folders:
        resolved = _resolved(folder)
        if path == resolved or resolved in path.parents:
            return True
    return False


def split_home(
    roots: list[Path], keep: Iterable[Path] = (), home: Path | None = None
) -> list[Path]:
    """``roots`` with any that is or holds the home folder replaced by what it holds
    beside the home folder's dotfiles: at each level down to the home folder, the entries
    off the way to it, then the home folder's entries whose names do not start with a dot.
    So the home folder's top level is not writable (a new ``.bashrc`` cannot be made), nor
    are the folders between the root and it. Roots in ``keep`` (the temp folders) stay as
    they are. Links and special files are left out (a link would grant its target)."""
    kept = set(keep)
    out: list[Path] = []
    for root in roots:
        found = None if root in kept else home_in(root, home)
        if found is None:
            out.append(root)
            continue
        folder = root
        for part in found.relative_to(root).parts:
            out += [p for p in _entries(folder) if p.name != part]
            folder = folder / part
        out += [p for p in _entries(found) if not p.name.startswith(".")]
    return list(dict.fromkeys(out))


def _entries(folder: Path) -> list[Path]:
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    return [p for p in children if not p.is_symlink() and (p.is_dir() or p.is_file())]


def writable_paths(write: Iterable[str], beside_home: Iterable[str], home: str) -> list[str]:
    """A policy's writable roots in full: ``write``, and the roots in ``beside_home``
    split around the home folder ``home`` (:func:`split_home`)."""
    split = split_home([Path(p) for p in beside_home], home=Path(home)) if home else []
    return [*write, *(str(p) for p in split)]


#: Where programs keep the sockets of a user's session in a temp folder: tmux and screen
#: (a command could type into your terminal), the SSH agent, X11, D-Bus, PulseAudio, Emacs
#: servers, and the ipc sockets of headless kernels (``cxk-*``).
SOCKET_FOLDERS = (
    "tmux-*",
    "screens",
    "uscreens",
    "ssh-*",
    ".X11-unix",
    ".ICE-unix",
    "dbus-*",
    "pulse-*",
    "emacs*",
    "cxk-*",
)


def session_sockets(temps: Iterable[Path]) -> list[Path]:
    """The sockets of the user's session a command could reach by path, to be hidden
    from it (commands may write in the temp folders, so the sandbox lets them connect to
    sockets there): the folders :data:`SOCKET_FOLDERS` names that hold a socket, and the
    sockets at the top of each temp folder; the runtime folder (``XDG_RUNTIME_DIR``:
    D-Bus, systemd, gpg-agent), screen's folder, and where ``TMUX`` and ``SSH_AUTH_SOCK``
    point."""
    import glob

    found = []
    for temp in temps:
        for pattern in SOCKET_FOLDERS:
            for match in glob.glob(os.path.join(glob.escape(str(temp)), pattern)):
                if _is_socket(match) or (os.path.isdir(match) and _holds_socket(match)):
                    found.append(match)
        found += _sockets_in(str(temp))
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    found += [runtime, "/run/screen", "/var/run/screen"]
    tmux = os.environ.get("TMUX", "").split(",")[0]
    if tmux:
        found.append(os.path.dirname(tmux))
    if os.environ.get("SSH_AUTH_SOCK"):
        found.append(os.environ["SSH_AUTH_SOCK"])
    out: list[Path] = []
    for raw in found:
        path = Path(raw)
        if os.path.lexists(path) and not path.is_symlink():
            resolved = _resolved(path)
            if resolved not in out and resolved != Path("/"):
                out.append(resolved)
    return out


def _is_socket(path: str) -> bool:
    import stat

    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def _sockets_in(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            names = [e.path for e in entries if not e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return [p for p in names if _is_socket(p)]


def _holds_socket(folder: str) -> bool:
    return bool(_sockets_in(folder))
