"""``shell``: run a command in the workspace, in the sandbox.

The command runs with ``bash -c`` through the sandbox's launcher
(:mod:`jupyter_codexmax.sandbox`): in the workspace (or a folder in it), with no standard
input, and with an environment stripped of the API key and every credential-like variable
(``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, ...). Where the sandbox is on it may
write only in the workspace and the temp folders, ``.git`` is read-only and there is no
network unless allowed. Whatever the sandbox, the call ends at its timeout (or when the turn
is stopped) with the command and every process it started, ``setsid`` and ``nohup``
children included. Output is cut head and tail.

The pattern guard (:func:`~jupyter_codexmax.tools._guard.check_command`) still refuses
the plainly destructive commands aimed outside the workspace, with a message the model can
act on; it is a courtesy, and the sandbox is the fence.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

from ..notebook.view import cut_text, strip_ansi
from ..secrets import without_credentials
from ..workspace import PathError
from ._guard import check_command
from .registry import Access, Tool, ToolContext, ToolError, ToolResult

__all__ = ["Shell", "check_command"]

OUTPUT_LIMIT = 12_000
#: Bytes of a command (as UTF-8). The command is one argument to ``bash -c``, and Linux
#: takes at most 128 KiB in one argument; a longer script belongs in a file.
MAX_COMMAND = 100_000
#: Seconds a command may run when the model gives no timeout.
DEFAULT_TIMEOUT = 120.0


class Shell(Tool):
    name = "shell"
    description = (
        "Run a bash command in the workspace (default folder: its root). No stdin; "
        "credentials are not in its environment. Sandboxed where the machine allows: it may "
        "write only in the workspace and temp folders, .git is read-only, no network unless "
        "the user allows it, and background processes end when the command does. Returns "
        "exit code, duration and output (long output cut)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": f"At most {MAX_COMMAND:,} bytes; write a longer script to a "
                "file and run the file.",
            },
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

    def check(self, args: dict[str, Any]) -> None:
        size = len(str(args.get("command", "")).encode("utf-8", "surrogatepass"))
        if size > MAX_COMMAND:
            raise ToolError(
                f"the command is {size:,} bytes long; at most {MAX_COMMAND:,} are accepted "
                "(one argument is limited to 128 KiB): write the script to a file "
                "(apply_patch) and run the file"
            )

    def approval_detail(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        from ..sandbox import sandbox_status

        where = f"  (in {args['cwd']})" if args.get("cwd") else ""
        status = sandbox_status(ctx.settings).describe()
        return f"$ {args.get('command', '')}{where}\n(sandbox {status})"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        from ..sandbox import command_policy, run_command

        self.check(args)

        try:
            cwd = ctx.workspace.resolve(args.get("cwd") or ".", must_exist=True)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        if not cwd.is_dir():
            raise ToolError(f"{args.get('cwd')} is not a folder")
        command = str(args["command"])
        if not ctx.settings.allow_destructive_outside_workspace:
            from ..sandbox.policy import writable_folders

            # In a thread: the event loop (and with it a stop or the run's time limit)
            # never waits for the guard.
            writable = writable_folders(ctx.settings)
            reason = await asyncio.to_thread(
                check_command, command, cwd, ctx.workspace, None, writable
            )
            if reason:
                raise ToolError(f"refused: {reason}")
        timeout = float(args.get("timeout") or DEFAULT_TIMEOUT)
        if not math.isfinite(timeout) or timeout <= 0:
            raise ToolError(f"timeout must be a positive number of seconds, not {timeout}")
        env = without_credentials(os.environ, also=(ctx.settings.api_key_env,))
        env["PAGER"] = "cat"
        env["GIT_PAGER"] = "cat"
        policy = command_policy(ctx.settings, ctx.workspace)
        done = await run_command(
            policy, ["bash", "-c", command], cwd=str(cwd), env=env, timeout=timeout
        )
        text = strip_ansi(done.output)
        text = ctx.redact(cut_text(text, OUTPUT_LIMIT))
        if done.timed_out:
            head = (
                f"timed out after {timeout:g} s (killed, with every process it started; "
                "the output so far is below)"
            )
        else:
            head = f"exit {done.returncode} in {done.duration:.1f}s"
        ok = done.returncode == 0 and not done.timed_out
        return ToolResult(f"{head}\n{text}".rstrip(), head, ok=ok)
