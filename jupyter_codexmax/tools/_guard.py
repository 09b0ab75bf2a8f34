"""The pattern guard: a reading of a shell command that refuses the obviously destructive
ones aimed outside the workspace before they run.

It is a courtesy, not the fence: the sandbox (``jupyter_codexmax.sandbox``) is what stops
a command that writes outside the workspace, whatever its spelling. The guard refuses
``sudo``, and commands that delete, move, overwrite or change the permissions of paths
outside the workspace and the other folders the sandbox lets commands write (the temp
folders: ``cp a.csv /tmp/`` is fine, ``rm -rf /tmp/*`` is not) (``rm``, ``mv``, the
destination of ``cp`` and ``ln``, ``dd of=``, ``chmod``, ``> file``, ``find -delete``...),
and destructive commands it cannot read (built with ``$(...)``, backticks or ``eval``),
with a message the model can act on. It reads a command line in one linear pass.
``bash -c``, ``python3 -c``, a pipe into ``sh`` and their like pass through it.
``CodexMax.allow_destructive_outside_workspace`` turns it off.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..workspace import MAX_PATH, Workspace

__all__ = ["check_command"]

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


#: The pieces of a command line, as POSIX ``shlex`` with ``punctuation_chars`` reads them
#: (blanks, runs of operator characters, quoted strings, escapes, plain characters), in
#: one linear pass: ``shlex`` builds a long word a character at a time, which takes
#: quadratic time.
_PIECES = re.compile(
    r"""([ \t\r\f\v]+)|([;&|()<>]+)|'([^']*)'|"((?:[^"\\]|\\.)*)"|\\(.)"""
    r"""|([^ \t\r\f\v;&|()<>'"\\]+)|(.)""",
    re.DOTALL,
)
_IN_DOUBLE_QUOTES = re.compile(r'\\(["\\])')


def _tokens(command: str) -> list[str]:
    """The words and operators of a command line; :class:`ValueError` for an unclosed
    quote or a trailing backslash."""
    tokens: list[str] = []
    word: list[str] = []
    in_word = False
    for match in _PIECES.finditer(command):
        blank, operator, single, double, escaped, plain, stray = match.groups()
        if blank is not None or operator is not None:
            if in_word:
                tokens.append("".join(word))
                word, in_word = [], False
            if operator is not None:
                tokens.append(operator)
            continue
        if stray is not None:
            raise ValueError("No escaped character" if stray == "\\" else "No closing quotation")
        if double is not None:
            word.append(_IN_DOUBLE_QUOTES.sub(r"\1", double))
        else:
            word.append(next(p for p in (single, escaped, plain) if p is not None))
        in_word = True
    if in_word:
        tokens.append("".join(word))
    return tokens


def _words(command: str) -> list[list[str]]:
    """The simple commands of a command line, as word lists (redirections kept)."""
    commands: list[list[str]] = [[]]
    for token in _tokens(command.replace("\n", " ; ")):
        if token in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def check_command(
    command: str,
    cwd: Path,
    workspace: Workspace,
    environ: dict[str, str] | None = None,
    writable: Sequence[Path] = (),
) -> str | None:
    """Why ``command`` is refused, or None: a change outside the workspace and outside
    the folders in ``writable`` (resolved; the other folders the sandbox lets commands
    write: the temp folders...). Linear in the command's length."""
    token = _FOLDERS.set({})
    try:
        return _check(command, cwd, workspace, environ, writable)
    finally:
        _FOLDERS.reset(token)


def _check(
    command: str,
    cwd: Path,
    workspace: Workspace,
    environ: dict[str, str] | None,
    writable: Sequence[Path],
) -> str | None:
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
    seen: set[tuple[Path, str]] = set()
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
            if (cwd, target) in seen:
                continue
            seen.add((cwd, target))
            problem = _outside(target, cwd, workspace, env, writable)
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
    normal = Path(os.path.normpath(path))
    # Links are followed only in a path that can exist: resolving one of thousands of
    # parts takes time quadratic in its length, and no such path can be opened anyway.
    if len(str(normal)) > MAX_PATH:
        return normal
    # The folder is resolved once per command line (``rm a1 a2 ...`` has one folder),
    # the last part only when it is a link.
    folder = _real_folder(str(normal.parent))
    resolved = folder / normal.name if normal.name else folder
    with contextlib.suppress(OSError):
        if resolved.is_symlink():
            with contextlib.suppress(RuntimeError):
                resolved = resolved.resolve()
    return resolved


def _real_folder(folder: str) -> Path:
    cache = _FOLDERS.get()
    found = cache.get(folder)
    if found is None:
        found = Path(folder)
        with contextlib.suppress(OSError, RuntimeError):
            found = found.resolve()
        cache[folder] = found
    return found


#: Folders resolved while one command line is checked (a fresh cache for each).
_FOLDERS: contextvars.ContextVar[dict[str, Path]] = contextvars.ContextVar("folders")


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
    if verb in _COPIES:
        return _destination(verb, args)
    paths = []
    for a in args:
        if a.startswith("--") and "=" in a:
            paths.append(a.split("=", 1)[1])
        elif not a.startswith("-"):
            paths.append(a)
    return paths


#: Commands that only read their sources and write one destination (``mv`` is not one:
#: its sources leave their folder).
_COPIES = frozenset({"cp", "ln", "install", "rsync"})


def _destination(verb: str, args: list[str]) -> list[str]:
    """Where ``cp``, ``ln``, ``install`` or ``rsync`` writes: ``-t DIR``, else the last
    path; ``ln`` with one path makes the link in the working folder. ``rsync
    --remove-source-files`` changes its sources too."""
    positional: list[str] = []
    target = None
    takes_value = {"-t", "--target-directory", "-S", "--suffix", "-m", "--mode", "-o", "-g"}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            positional += args[i + 1 :]
            break
        if a in ("-t", "--target-directory") and i + 1 < len(args):
            target = args[i + 1]
        elif a.startswith("--target-directory="):
            target = a.split("=", 1)[1]
        elif a.startswith("-t") and len(a) > 2 and verb != "rsync":
            target = a[2:]
        elif not a.startswith("-"):
            positional.append(a)
        if a in takes_value and verb != "rsync":
            i += 1
        i += 1
    if verb == "rsync" and "--remove-source-files" in args:
        return positional
    if target is not None:
        return [target]
    if verb == "ln" and len(positional) == 1:
        return ["."]
    return positional[-1:]


def _outside(
    target: str, cwd: Path, workspace: Workspace, env: dict[str, str], writable: Sequence[Path]
) -> str | None:
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
    # Below a folder the sandbox lets commands write (a temp folder): fine, but not the
    # folder itself (``rm -rf /tmp/*`` is judged at /tmp).
    if any(root in resolved.parents for root in writable):
        return None
    return str(resolved)
