"""The launcher: ``python -m jupyter_codexmax.sandbox.exec POLICY -- COMMAND...`` runs
COMMAND under POLICY (JSON, see :class:`~jupyter_codexmax.sandbox.SandboxPolicy`) and ends
every process it started when it ends.

Three processes, all in the caller's process group:

- **the launcher** (this process) is a child subreaper: processes orphaned below it (a
  ``setsid``, ``nohup`` or double-forked child) become its children, and when the command
  ends, or the launcher is told to stop (SIGTERM, SIGHUP), or its own parent goes away,
  it kills them all;
- **init**, with namespaces: the first process of new mount, PID and (without network)
  network namespaces. It makes every mount but the writable roots read-only (metadata
  too, which Landlock does not fence), mounts a fresh ``/proc``, makes the read-only paths
  (``.git``) read-only, brings the loopback interface up, starts the command and waits
  for it. When it exits,
  the kernel kills every process left in its PID namespace;
- **the command**: loses the dangerous capabilities, sets ``no_new_privs``, restricts
  itself with Landlock (read everywhere, write only under the writable roots; TCP denied
  when there is no network namespace and the network is not allowed), and execs.

A sandbox that cannot be set up as the policy asks is an error (exit 125 and one line on
stderr), never a silent run without it. ``--probe`` sets up what it can and prints, as
JSON, what worked.

Interrupts (SIGINT) go to the whole process group (as jupyter_client sends them); the
launcher and init ignore them, the command gets them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import sys
from typing import Any

from . import _linux

#: Exit status when the sandbox could not be set up.
SETUP_FAILED = 125


class SetupError(Exception):
    pass


def _landlock(policy: dict[str, Any], report: dict[str, Any], network_namespace: bool) -> None:
    import landlockpy
    from landlockpy import AccessFS, AccessNet, Ruleset, Scope

    abi = landlockpy.abi_version()
    if abi < 1:
        raise SetupError("Landlock is not available in this kernel")
    supported = landlockpy.fs_for_abi(abi)
    read = AccessFS.READ_FILE | AccessFS.READ_DIR | AccessFS.EXECUTE
    write = supported & ~(AccessFS.MAKE_CHAR | AccessFS.MAKE_BLOCK | AccessFS.IOCTL_DEV)
    device = (
        AccessFS.READ_FILE | AccessFS.WRITE_FILE | AccessFS.TRUNCATE | AccessFS.IOCTL_DEV
    ) & supported
    handled_net = AccessNet.NONE
    if not policy.get("network") and not network_namespace:
        handled_net = landlockpy.net_for_abi(abi)
    scoped = Scope.ABSTRACT_UNIX_SOCKET | Scope.SIGNAL
    on_files = (
        AccessFS.EXECUTE
        | AccessFS.READ_FILE
        | AccessFS.WRITE_FILE
        | AccessFS.TRUNCATE
        | AccessFS.IOCTL_DEV
    )
    with Ruleset(handled_fs=supported, handled_net=handled_net, scoped=scoped) as ruleset:

        def allow(path: str, access: AccessFS) -> None:
            if os.path.exists(path):
                ruleset.allow_path(path, access if os.path.isdir(path) else access & on_files)

        allow("/", read)
        for path in ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts"):
            allow(path, device | read)
        for root in _writable(policy):
            allow(root, write | read)
        ruleset.restrict()
        report["landlock"] = abi
        report["network_landlock"] = bool(ruleset.handled_net)


def _namespaces(policy: dict[str, Any], report: dict[str, Any]) -> int:
    flags = _linux.CLONE_NEWNS | _linux.CLONE_NEWPID
    if not policy.get("network"):
        flags |= _linux.CLONE_NEWNET
    uid, gid = os.getuid(), os.getgid()
    try:
        _linux.unshare(flags)
        report["user_namespace"] = False
    except PermissionError:
        try:
            _linux.unshare(flags | _linux.CLONE_NEWUSER)
            _linux.map_user(uid, gid)
        except OSError as exc:
            raise SetupError(f"no namespaces ({exc})") from exc
        report["user_namespace"] = True
    except OSError as exc:
        raise SetupError(f"no namespaces ({exc})") from exc
    return flags


def _inside(policy: dict[str, Any], report: dict[str, Any], flags: int, strict: bool) -> None:
    """In init, the first process of the new namespaces: the mounts and the network."""
    _linux.mount(None, "/", None, _linux.MS_REC | _linux.MS_PRIVATE)
    if policy.get("read_only_mounts"):
        try:
            _read_only_mounts(_writable(policy))
        except OSError as exc:
            if strict:
                raise SetupError(f"cannot make the file system read-only ({exc})") from exc
            report["read_only"] = False
    try:
        _linux.mount("proc", "/proc", "proc", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC)
        report["proc"] = True
    except OSError:
        report["proc"] = False  # a container hiding parts of /proc: keep the old one
    for path in policy.get("read_only", []):
        if os.path.lexists(path):
            try:
                _linux.bind_read_only(path)
            except OSError as exc:
                if strict:
                    raise SetupError(f"cannot make {path} read-only ({exc})") from exc
                report["read_only"] = False
    report.setdefault("read_only", True)
    for path in policy.get("hidden", []):
        try:
            if os.path.isdir(path):
                _linux.hide_folder(path)
            elif os.path.lexists(path):  # a socket: /dev/null in its place
                _linux.mount("/dev/null", path, None, _linux.MS_BIND)
        except OSError as exc:
            if strict and exc.errno not in _UNREACHABLE:
                raise SetupError(f"cannot hide {path} ({exc})") from exc
    # The working folder still points into the mount it was in before the new ones went
    # on top (a writable root's own, .git's): enter it again by its path.
    with contextlib.suppress(OSError):
        os.chdir(os.getcwd())
    if flags & _linux.CLONE_NEWNET:
        try:
            _linux.loopback_up()
            report["network_namespace"] = True
        except OSError as exc:
            if strict:
                raise SetupError(f"cannot set up the network namespace ({exc})") from exc
            report["network_namespace"] = False


def _writable(policy: dict[str, Any]) -> list[str]:
    """The policy's writable roots, with those that hold the home folder split around its
    dotfiles (computed here: there may be more than one argument holds)."""
    if not policy.get("beside_home"):
        return list(policy.get("write", []))
    from .protect import writable_paths

    return writable_paths(policy.get("write", []), policy["beside_home"], policy["home"])


#: Errors of a mount point this process cannot reach (a folder it may not enter, a mount
#: hidden under another): nothing there to protect from it.
_UNREACHABLE = frozenset({errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.ELOOP, errno.EINVAL})


def _read_only_mounts(write: list[str]) -> None:
    """Every mount read-only but the writable roots, as bubblewrap's read-only root does:
    Landlock does not fence metadata (chmod, chown, utime, extended attributes), a read-only
    mount does. Each writable root is first bound onto itself (with what is mounted below
    it), so it is a mount of its own that stays writable; then every other mount point is
    made read-only, keeping its other flags. A writable root may be a file (an entry of
    the home folder, see ``protect.split_home``)."""
    roots = [os.path.normpath(p) for p in write if os.path.exists(p) and not os.path.islink(p)]
    found = set(roots)
    for root in roots:
        _linux.mount(root, root, None, _linux.MS_BIND | _linux.MS_REC)
    for path, kept in _linux.mount_points():
        if _under(path, found):
            continue
        try:
            _linux.make_read_only(path, kept)
        except OSError as exc:
            if exc.errno not in _UNREACHABLE:
                raise


def _under(path: str, roots: set[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or below one (in the depth of ``path``)."""
    while True:
        if path in roots:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def _confine(policy: dict[str, Any], report: dict[str, Any], network_namespace: bool) -> None:
    """In the command's own process, just before exec."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    if policy.get("landlock"):
        _linux.drop_capabilities()
        try:
            _landlock(policy, report, network_namespace)
        except OSError as exc:  # landlockpy's errors, a missing library
            raise SetupError(f"Landlock: {exc}") from exc
        except ImportError as exc:
            raise SetupError(f"Landlock: {exc}") from exc


def _kill_tree(me: int) -> None:
    """Kill every process left below this one (orphans come to it: it is a subreaper)."""
    for _ in range(1000):
        found = _linux.children(me)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _pid in found:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break


def _status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def _init(command: list[str], pre_exec: Any) -> int:
    """PID 1 of the new PID namespace: start the command, reap orphans, return its status."""
    signal.signal(signal.SIGINT, lambda *_: None)
    pid = os.fork()
    if pid == 0:
        _exec(command, pre_exec)
    while True:
        try:
            done, wait_status = os.wait()
        except ChildProcessError:
            return 1
        if done == pid:
            return _status(wait_status)


def _exec(command: list[str], pre_exec: Any) -> None:
    try:
        pre_exec()
        os.execvp(command[0], command)
    except SetupError as exc:
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)
    except OSError as exc:
        print(f"sandbox: cannot run {command[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
    except BaseException as exc:  # never fall back into the launcher's code
        print(f"sandbox: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)


def run(policy: dict[str, Any], command: list[str], *, probe: bool = False) -> int:
    me = os.getpid()
    parent = os.getppid()
    report: dict[str, Any] = {}
    stop: list[int] = []

    def on_stop(signum: int, _frame: Any) -> None:
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_stop)
    signal.signal(signal.SIGINT, lambda *_: None)
    with contextlib.suppress(OSError):  # Linux before 3.4: no subreaper, nothing better
        _linux.prctl(_linux.PR_SET_CHILD_SUBREAPER, 1)
    flags = 0
    if policy.get("namespaces"):
        try:
            flags = _namespaces(policy, report)
        except SetupError as exc:
            if not probe:
                print(f"sandbox: {exc}", file=sys.stderr, flush=True)
                return SETUP_FAILED
            report["namespaces"] = str(exc)
    if "JPY_PARENT_PID" in os.environ:
        # A kernel exits when its parent is not the one jupyter_client named: name the one
        # it has (init's 1 means "do not watch"; the launcher watches in its place).
        os.environ["JPY_PARENT_PID"] = "1" if flags & _linux.CLONE_NEWPID else str(me)
    result_r, result_w = os.pipe() if probe else (-1, -1)

    def pre_exec() -> None:
        try:
            _confine(policy, report, report.get("network_namespace", False))
        except SetupError as exc:
            if not probe:
                raise
            report["landlock"], report["landlock_error"] = 0, str(exc)
        if probe:
            os.write(result_w, json.dumps(report).encode())
            os._exit(0)

    child = os.fork()
    if child == 0:
        try:
            if flags:
                # Killed with the launcher (and then the kernel kills the namespace).
                _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
                _inside(policy, report, flags, strict=not probe)
                os._exit(_init(command, pre_exec))
            with contextlib.suppress(OSError):  # killed with the launcher, at least
                _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
            _exec(command, pre_exec)
        except SetupError as exc:
            print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        except BaseException as exc:
            print(f"sandbox: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)
    code = _wait(child, parent, stop)
    _kill_tree(me)
    if probe:
        os.close(result_w)
        data = os.read(result_r, 65536)
        found = json.loads(data) if data else {}
        found.setdefault("namespaces", report.get("namespaces", bool(flags)))
        if code == SETUP_FAILED:
            found["failed"] = True
        print(json.dumps(found))
        return 0
    return code


def _wait(child: int, parent: int, stop: list[int]) -> int:
    """The command's exit status; kills it at a stop or when the launcher's parent is gone."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):  # Linux before 5.3: poll instead
        pidfd = os.pidfd_open(child)
    try:
        while True:
            if stop or os.getppid() != parent:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                return 128 + (stop[0] if stop else signal.SIGKILL)
            done, wait_status = os.waitpid(child, os.WNOHANG)
            if done == child:
                return _status(wait_status)
            watched = [wake_r] if pidfd is None else [wake_r, pidfd]
            ready, _, _ = select.select(watched, [], [], 1.0 if pidfd is not None else 0.05)
            if wake_r in ready:
                os.read(wake_r, 512)
    finally:
        signal.set_wakeup_fd(-1)
        for fd in (wake_r, wake_w, pidfd):
            if fd is not None:
                os.close(fd)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        policy = json.loads(argv[1]) if len(argv) > 1 else {}
        return run(policy, ["true"], probe=True)
    if len(argv) < 3 or argv[1] != "--":
        usage = "usage: python -m jupyter_codexmax.sandbox.exec POLICY -- COMMAND..."
        print(usage, file=sys.stderr)
        return 2
    return run(json.loads(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
