"""Keeping the API key out of the environment that child processes can read.

A process's environment at its start stays readable in ``/proc/<pid>/environ`` for the
whole life of the process, to any process of the same user, and removing the variable from
``os.environ`` later does not change it. So before a headless run starts kernels and shell
commands, it starts itself again (``exec``, same process id) with the key's variable left
out of its environment, and hands the key over through a pipe (``CODEXMAX_API_KEY_FD``);
:func:`handed_over_key` reads it back once. Linux only (elsewhere nothing changes).

What a same-user process can still do: read the agent's memory if the system lets it trace
other processes (``kernel.yama.ptrace_scope`` 0); a sandboxed shell command cannot (Landlock
keeps it from tracing or reading ``/proc`` of processes outside its sandbox).
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["HANDOFF_VARIABLE", "handed_over_key", "restart_without_key"]

#: ``<fd>:<variable>``: where the key the environment no longer holds can be read.
HANDOFF_VARIABLE = "CODEXMAX_API_KEY_FD"

_handed: dict[str, str] = {}


def restart_without_key(variable: str, module: str = "jupyter_codexmax") -> None:
    """Start this command again without ``variable`` in its environment, the key handed
    over through a pipe. Returns only where nothing is to be done (not Linux, no key in
    the environment, or already restarted)."""
    value = os.environ.get(variable, "")
    if sys.platform != "linux" or not value.strip() or HANDOFF_VARIABLE in os.environ:
        return
    read, write = os.pipe()
    os.write(write, value.encode("utf-8"))
    os.close(write)
    os.set_inheritable(read, True)
    env = {k: v for k, v in os.environ.items() if k != variable}
    env[HANDOFF_VARIABLE] = f"{read}:{variable}"
    sys.stdout.flush()
    sys.stderr.flush()
    # Not ``python -m``: that puts the working folder first on sys.path, and a
    # ``traitlets.py`` there would run inside the agent, with the key.
    start = (
        "import sys; del sys.path[0]; import runpy; "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    os.execve(sys.executable, [sys.executable, "-c", start, *sys.argv[1:]], env)


def handed_over_key(variable: str) -> str:
    """The key handed over for ``variable`` by :func:`restart_without_key` ("" if none).
    The pipe is read once and closed; the variable naming it leaves the environment (so
    the processes this one starts do not inherit it)."""
    if variable in _handed:
        return _handed[variable]
    spec = os.environ.get(HANDOFF_VARIABLE, "")
    fd_text, _, named = spec.partition(":")
    if named != variable or not fd_text.isdigit():
        return ""
    os.environ.pop(HANDOFF_VARIABLE, None)
    fd = int(fd_text)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return ""
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    _handed[variable] = b"".join(chunks).decode("utf-8", "replace")
    return _handed[variable]
