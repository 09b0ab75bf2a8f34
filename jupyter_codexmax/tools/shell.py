"""``shell``: run a command in the workspace, and the guard against destructive commands
aimed outside it.

The command runs with ``bash -c`` in a new process group, in the workspace (or a folder in
it), with no standard input, and with an environment stripped of the API key and every
credential-like variable (``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, ...). At
its timeout the whole group is killed. Output is cut head and tail.

The guard (:func:`check_command`) is a best-effort reading of the command, not a sandbox:
it refuses ``sudo``, and commands that delete, move, overwrite or change the permissions
of paths outside the workspace (``rm``, ``mv``, ``cp``, ``dd of=``, ``chmod``, ``> file``,
``find -delete``...), and destructive commands it cannot read (built with ``$(...)``,
backticks or ``eval``). ``CodexMax.allow_destructive_outside_workspace`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import time
from pathlib import Path
from typing import Any

from ..notebook.view import cut_text, strip_ansi
from ..secrets import without_credentials
from ..workspace import PathError, Workspace
from .registry import Access, Tool, ToolContext, ToolError, ToolResult

__all__ = ["Shell", "check_command"]

OUTPUT_LIMIT = 12_000

DESTRUCTIVE = frozenset(
    {
        "rm",
        "rmdir",
        "unlink",
        "mv",
        "cp",
        "dd",
        "shred",
        "truncate",
        "chmod",
        "chown",
        "chgrp",
        "ln",
        "install",
        "rsync",
        "tee",
        "touch",
        "mkdir",
        "tar",
        "unzip",
        "find",
        "sed",
        "perl",
        "git",
        "mount",
        "umount",
        "mkfs",
        "wipefs",
        "fdisk",
        "parted",
    }
)
#: Commands that act on the system as a whole: refused wherever they run.
SYSTEM = frozenset(
    {
        "sudo",
        "doas",
        "su",
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "mkfs",
        "wipefs",
        "fdisk",
        "parted",
        "mount",
        "umount",
    }
)
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "|&", ";;", "\n"}
_REDIRECTS = {">", ">>", "&>", ">|", "&>>", "1>", "2>", "1>>", "2>>"}
_HARMLESS_TARGETS = {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"}


def _words(command: str) -> list[list[str]]:
    """The simple commands of a command line, as word lists (redirections kept)."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def check_command(
    command: str, cwd: Path, workspace: Workspace, environ: dict[str, str] | None = None
) -> str | None:
    """Why ``command`` is refused, or None."""
    env = dict(os.environ if environ is None else environ)
    verbs_anywhere = set(re.findall(r"[A-Za-z][A-Za-z0-9_.+-]*", command)) & DESTRUCTIVE
    if ("$(" in command or "`" in command or re.search(r"\beval\b", command)) and verbs_anywhere:
        return (
            "the command builds a destructive command with $(...), backticks or eval, "
            "which cannot be checked; write it out plainly"
        )
    try:
        commands = _words(command)
    except ValueError as exc:
        return f"the command cannot be read ({exc})"
    for simple in commands:
        words = _strip_wrappers(simple)
        if not words:
            continue
        verb = os.path.basename(words[0])
        if verb in SYSTEM or verb.startswith("mkfs"):
            return f"{verb} is never run by the agent"
        args = words[1:]
        if verb in ("cd", "pushd"):
            # Later commands on the line run there: judge their paths from it.
            target = args[0] if args and not args[0].startswith("-") else "~"
            cwd = _resolve(target, cwd, env) or cwd
            continue
        targets: list[str] = []
        for i, word in enumerate(args):
            redirect = word in _REDIRECTS or (word.endswith(">") and word[:-1].isdigit())
            if redirect and i + 1 < len(args):
                targets.append(args[i + 1])
        if verb in DESTRUCTIVE:
            targets.extend(_path_arguments(verb, args))
        for target in targets:
            problem = _outside(target, cwd, workspace, env)
            if problem:
                return f"{verb} would change {problem}, outside the workspace"
    return None


#: Words that run the command after them: the guard reads through them.
_WRAPPERS = frozenset(
    {
        "time",
        "exec",
        "command",
        "builtin",
        "nohup",
        "nice",
        "ionice",
        "stdbuf",
        "timeout",
        "xargs",
        "env",
        "then",
        "do",
        "else",
        "elif",
        "if",
        "while",
        "until",
        "{",
        "}",
        "!",
        "sudo",
        "doas",
    }
)
#: Wrappers whose options take a value (``nice -n 5``, ``timeout -s KILL 10``).
_VALUE_OPTIONS = {
    "nice": {"-n"},
    "ionice": {"-c", "-n"},
    "timeout": {"-s", "-k"},
    "xargs": {"-I", "-n", "-P", "-d", "-L", "-s"},
    "env": {"-u", "-C"},
    "stdbuf": {"-i", "-o", "-e"},
}


def _strip_wrappers(words: list[str]) -> list[str]:
    """The command itself: without ``VAR=value`` prefixes and the wrappers and shell
    keywords in front of it (``time``, ``env X=1``, ``nice -n 5``, ``do``, ``{``...)."""
    i = 0
    while i < len(words):
        word = words[i]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            i += 1
            continue
        name = os.path.basename(word)
        if name in ("sudo", "doas"):
            return words[i:]  # refused as a verb of its own
        if name not in _WRAPPERS:
            break
        i += 1
        takes_value = _VALUE_OPTIONS.get(name, set())
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in takes_value else 1
        if name == "timeout" and i < len(words) and re.match(r"^[0-9.]+[smhd]?$", words[i]):
            i += 1
    return words[i:]


def _resolve(target: str, cwd: Path, env: dict[str, str]) -> Path | None:
    expanded = os.path.expanduser(_expand(target, env))
    if "$" in expanded:
        return None
    path = Path(expanded)
    if not path.is_absolute():
        path = cwd / path
    resolved = Path(os.path.normpath(path))
    with contextlib.suppress(OSError):
        resolved = resolved.resolve()
    return resolved


def _expand(text: str, env: dict[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` from ``env`` (unknown ones are left as they are)."""
    return re.sub(
        r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text
    )


def _path_arguments(verb: str, args: list[str]) -> list[str]:
    if verb == "dd":
        return [a[3:] for a in args if a.startswith("of=")]
    if verb == "find":
        acts = {"-delete", "-exec", "-execdir", "-ok", "-fprint", "-fprintf", "-fls"}
        if not acts & set(args):
            return []
        paths = []
        for a in args:
            if a.startswith("-") or a in ("!", "(", ")"):
                break
            paths.append(a)
        return paths or ["."]
    if verb in ("sed", "perl"):
        if not any(a == "-i" or a.startswith(("-i", "--in-place")) for a in args):
            return []
        return [a for a in args[1:] if not a.startswith("-")]
    if verb == "git":
        risky = {"clean", "checkout", "reset", "restore", "rm", "mv", "stash", "switch"}
        targets = []
        for i, a in enumerate(args):
            if a == "-C" and i + 1 < len(args):
                targets.append(args[i + 1])
        if risky & set(args):
            targets.append(".")
        return targets
    if verb in ("tar", "unzip"):
        targets = []
        for i, a in enumerate(args):
            if a in ("-C", "--directory", "-d") and i + 1 < len(args):
                targets.append(args[i + 1])
            elif a.startswith("--directory="):
                targets.append(a.split("=", 1)[1])
        return targets or ["."]
    paths = []
    for a in args:
        if a.startswith("--") and "=" in a:
            paths.append(a.split("=", 1)[1])
        elif not a.startswith("-"):
            paths.append(a)
    return paths


def _outside(target: str, cwd: Path, workspace: Workspace, env: dict[str, str]) -> str | None:
    if target in _HARMLESS_TARGETS:
        return None
    expanded = os.path.expanduser(_expand(target, env))
    if "$" in expanded:
        return f"{target} (an unknown variable)"
    # A glob: judge the folder it starts in (``/*`` starts in ``/``).
    for i, ch in enumerate(expanded):
        if ch in "*?[":
            head = expanded[:i]
            expanded = (head.rsplit("/", 1)[0] or "/") if "/" in head else "."
            break
    resolved = _resolve(expanded, cwd, env)
    if resolved is None:
        return f"{target} (an unknown variable)"
    if workspace.contains(resolved):
        return None
    return str(resolved)


class Shell(Tool):
    name = "shell"
    description = (
        "Run a bash command in the workspace (default folder: its root). No stdin; "
        "credentials are not in its environment. Returns exit code, duration and output "
        "(long output cut)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string"},
            "cwd": {"type": "string", "description": "A folder in the workspace."},
            "timeout": {"type": "number", "description": "Seconds (default 120)."},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    access: Access = "shell"

    def summarize(self, args: dict[str, Any]) -> str:
        command = " ".join(str(args.get("command", "")).split())
        return "shell " + (command if len(command) <= 80 else command[:77] + "...")

    def approval_detail(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        where = f"  (in {args['cwd']})" if args.get("cwd") else ""
        return f"$ {args.get('command', '')}{where}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        try:
            cwd = ctx.workspace.resolve(args.get("cwd") or ".", must_exist=True)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        if not cwd.is_dir():
            raise ToolError(f"{args.get('cwd')} is not a folder")
        command = str(args["command"])
        if not ctx.settings.allow_destructive_outside_workspace:
            reason = check_command(command, cwd, ctx.workspace)
            if reason:
                raise ToolError(f"refused: {reason}")
        timeout = float(args.get("timeout") or 120)
        env = without_credentials(os.environ, also=(ctx.settings.api_key_env,))
        env["PAGER"] = "cat"
        env["GIT_PAGER"] = "cat"
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=str(cwd),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            _kill(proc)
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            _kill(proc)
            with contextlib.suppress(Exception):
                await proc.communicate()
            raise
        duration = time.monotonic() - started
        text = strip_ansi(out.decode("utf-8", "replace"))
        text = ctx.redact(cut_text(text, OUTPUT_LIMIT))
        code = proc.returncode
        status = f"timed out after {timeout:g} s (killed)" if timed_out else f"exit {code}"
        head = f"{status} in {duration:.1f}s"
        return ToolResult(f"{head}\n{text}".rstrip(), head, ok=code == 0 and not timed_out)


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
