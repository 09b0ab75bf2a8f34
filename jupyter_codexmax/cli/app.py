"""``jupyter codexmax``: the command-line application and its subcommands.

Each subcommand is a Jupyter application, so it reads ``jupyter_codexmax_config.py``,
takes ``--CodexMax.<setting>=...`` for any setting, and has ``--help-all``,
``--show-config`` and ``--generate-config``. The short flags map onto the same settings.

Exit status: 0 success, 1 the model or API failed, 2 a usage or configuration mistake.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp, base_aliases, base_flags
from traitlets import Bool, Float, Int, Unicode

from .._version import __version__
from ..config import CONFIG_FILE_NAME, CodexMax, load_settings
from ..errors import CodexmaxError, ConfigError

EXIT_OK, EXIT_MODEL_ERROR, EXIT_USAGE = 0, 1, 2

_model_aliases: dict[str, Any] = {
    **base_aliases,
    "provider": ("CodexMax.provider", "Which API: responses (default) or chat."),
    "model": ("CodexMax.model", "The model (or Azure deployment) name."),
    "effort": ("CodexMax.reasoning_effort", "Reasoning effort: none ... xhigh."),
    "base-url": ("CodexMax.base_url", "The API base URL (default: OPENAI_BASE_URL)."),
}


class UsageError(CodexmaxError):
    """A command-line mistake (exit 2)."""

    exit_code = EXIT_USAGE


class _Base(JupyterApp):
    """What every ``jupyter codexmax`` command shares."""

    version = __version__
    raise_config_file_errors = True
    classes = [CodexMax]

    def _config_file_name_default(self) -> str:
        return CONFIG_FILE_NAME

    def _log_format_default(self) -> str:
        return "jupyter-codexmax: %(message)s"

    def _log_level_default(self) -> int:
        return logging.WARNING

    def start_show_config(self) -> None:
        """``--show-config``, with secret settings and credential headers masked."""
        import json
        import pprint

        from ..secrets import mask_config

        config = mask_config(self.config)
        for cls in type(self).mro():
            if cls.__name__ in config:
                config[cls.__name__].pop("show_config", None)
                config[cls.__name__].pop("show_config_json", None)
        if self.show_config_json:
            json.dump(config, sys.stdout, indent=1, sort_keys=True, default=repr)
            sys.stdout.write("\n")
            return
        if self._loaded_config_files:
            print("Loaded config files:")
            for name in self._loaded_config_files:
                print("  " + name)
            print()
        for classname in sorted(config):
            if config[classname]:
                print(classname)
                for trait in sorted(config[classname]):
                    value = pprint.pformat(config[classname][trait], indent=4, compact=True)
                    print(f"  .{trait} = {value}")

    def settings(self) -> CodexMax:
        """Settings from config files, then the environment, then this command line."""
        return load_settings(
            config=self.config, cli_config=self.cli_config, read_files=False, parent=self
        )

    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        """As Jupyter does, but a broken config file is a one-line configuration error."""
        try:
            super().load_config_file(suppress_errors)
        except Exception as exc:
            name = getattr(exc, "filename", None) or " or ".join(
                os.path.join(folder, f"{base}.{ext}")
                for folder in self.config_file_paths
                for base in ("jupyter_config", CONFIG_FILE_NAME)
                for ext in ("py", "json")
                if os.path.exists(os.path.join(folder, f"{base}.{ext}"))
            )
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigError(f"could not read {name}: {type(exc).__name__}: {reason}") from exc

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        # The package's own log goes where the application's goes, secrets masked.
        from ..secrets import RedactingFilter

        package_log = logging.getLogger("jupyter_codexmax")
        if any(not isinstance(h, logging.NullHandler) for h in package_log.handlers):
            return  # a subcommand already connected it
        package_log.setLevel(self.log.level)
        for handler in self.log.handlers:
            handler.addFilter(RedactingFilter())
            package_log.addHandler(handler)
        package_log.propagate = False

    def start(self) -> None:
        if self.generate_config:
            self.write_default_config()
            return
        try:
            status = self.run()
        except CodexmaxError as exc:
            self.fail(exc)
        except KeyboardInterrupt:
            print("\njupyter-codexmax: interrupted", file=sys.stderr)
            self.exit(130)
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, as other tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            self.exit(0)
        self.exit(status)

    def run(self) -> int:
        raise NotImplementedError

    def fail(self, exc: CodexmaxError) -> None:
        from ..secrets import redact

        print(f"jupyter-codexmax: error: {redact(str(exc))}", file=sys.stderr)
        self.exit(exc.exit_code)


class AskApp(_Base):
    name = "jupyter-codexmax-ask"
    description = """Ask the model one question and stream its answer (no tools).

    The quickest proof that a configuration works. The prompt is the rest of the command
    line, or standard input when it is '-' or left out."""
    examples = """
    jupyter codexmax ask "What is a context window?"
    jupyter codexmax ask --provider chat --base-url http://localhost:11434/v1 --model qwen3 "hi"
    echo "Explain this traceback" | jupyter codexmax ask -
    """

    instructions = Unicode(
        "You are answering a one-off question asked from the jupyter-codexmax command line. "
        "Be brief.",
        help="The instructions (system prompt) sent with the question.",
    ).tag(config=True)
    show_reasoning = Bool(
        False, help="Print the model's reasoning summary to standard error as it streams."
    ).tag(config=True)
    show_usage = Bool(False, help="Print token usage to standard error at the end.").tag(
        config=True
    )

    aliases = {
        **_model_aliases,
        "instructions": ("AskApp.instructions", "Instructions sent with the question."),
    }
    flags = {
        **base_flags,
        "reasoning": ({"AskApp": {"show_reasoning": True}}, "Show the reasoning summary."),
        "usage": ({"AskApp": {"show_usage": True}}, "Show token usage at the end."),
    }

    def run(self) -> int:
        prompt = " ".join(self.extra_args).strip()
        if prompt in ("", "-"):
            if prompt == "-" or not sys.stdin.isatty():
                prompt = sys.stdin.read().strip()
            if not prompt:
                raise UsageError('no question: give one, as in  jupyter codexmax ask "hello"')
        settings = self.settings()
        from .ask import ask

        return ask(
            settings,
            prompt,
            instructions=self.instructions,
            show_reasoning=self.show_reasoning,
            show_usage=self.show_usage,
        )


class DoctorApp(_Base):
    name = "jupyter-codexmax-doctor"
    description = """Check the setup: settings, whether the endpoint answers, token counting,
    kernels and the JupyterLab extension. Exit status 0 when the model can be reached."""
    aliases = dict(_model_aliases)

    def run(self) -> int:
        from .doctor import doctor

        return doctor(self)


class ScriptedServerApp(_Base):
    name = "jupyter-codexmax-scripted-server"
    description = """Run the scripted model server: a real HTTP server on loopback that
    speaks the Responses API and Chat Completions and answers from a script file, for
    tests, demos and trying things without an API key. It is not a model.

    Point a client at the printed base URL (OPENAI_BASE_URL)."""
    examples = """
    jupyter codexmax scripted-server examples/scripts/hello.json --port 8765
    """

    host = Unicode("127.0.0.1", help="Address to listen on.").tag(config=True)
    port = Int(0, help="Port to listen on (0: a free one, printed at start).").tag(config=True)
    url_file = Unicode("", help="Write the base URL to this file once listening.").tag(config=True)
    require_key = Unicode(
        "", help="Refuse requests that do not carry this API key (to test authentication)."
    ).tag(config=True)
    quiet = Bool(False, help="Do not print a line per request.").tag(config=True)

    aliases = {
        **base_aliases,
        "host": "ScriptedServerApp.host",
        "port": "ScriptedServerApp.port",
        "url-file": "ScriptedServerApp.url_file",
        "require-key": "ScriptedServerApp.require_key",
    }
    flags = {
        **base_flags,
        "quiet": ({"ScriptedServerApp": {"quiet": True}}, "No line per request."),
    }

    def run(self) -> int:
        from .serve import serve

        if len(self.extra_args) > 1:
            raise UsageError("give at most one script file")
        return serve(self, self.extra_args[0] if self.extra_args else None)


class RunApp(_Base):
    name = "jupyter-codexmax-run"
    description = """Run the agent on notebooks, headless: for scripts, cron, CI and schedulers.

    Each notebook gets its own agent and kernel; the task is the same for all. A live log
    goes to standard error, a summary to standard output. Exit status: 0 when every
    notebook is done, 1 when a notebook failed or was left incomplete (a cell still
    failing, plan steps not done), 2 for a usage or configuration mistake or an
    unreadable notebook."""
    examples = """
    jupyter codexmax run analysis.ipynb --task "Fix the failing cells"
    jupyter codexmax run reports/*.ipynb --task-file refactor.md --full-auto --jobs 2 \\
        --report report.json
    """

    task = Unicode("", help="The task for the agent ('-' reads it from standard input).").tag(
        config=True
    )
    task_file = Unicode("", help="A file holding the task.").tag(config=True)
    jobs = Int(1, help="Notebooks run at the same time.").tag(config=True)
    timeout = Float(0.0, help="Seconds each notebook's run may take (0: no limit).").tag(
        config=True
    )
    report = Unicode("", help="Write a JSON report of the run to this file.").tag(config=True)
    quiet = Bool(False, help="No live log on standard error.").tag(config=True)
    new_session = Bool(
        False,
        help="""Start a new session instead of continuing the one stored in each notebook
        (it is replaced when the first turn ends).""",
    ).tag(config=True)
    executor = Unicode(
        "",
        help="""Where the notebooks run: local (this machine, --jobs at once; the default)
        or dask (one Dask task per notebook, on the cluster at --scheduler or on a
        LocalCluster of --jobs worker processes). See docs/scale.md.""",
    ).tag(config=True)
    scheduler = Unicode(
        "", help="The Dask scheduler's address (tcp://host:8786); implies --executor dask."
    ).tag(config=True)
    max_concurrent_requests = Int(
        0,
        help="""Model requests in flight at once across all notebooks (and, with dask, all
        workers); a 429 answer then slows every notebook down. 0: no limit.""",
    ).tag(config=True)
    report_md = Unicode("", help="Write the report as a Markdown table to this file.").tag(
        config=True
    )
    resume = Unicode(
        "",
        help="""An earlier run's JSON report: skip the notebooks it lists as done, run the
        others again (the new report, --report or else this file, lists them all).""",
    ).tag(config=True)

    aliases = {
        **_model_aliases,
        "executor": ("RunApp.executor", "local (default) or dask."),
        "scheduler": ("RunApp.scheduler", "The Dask scheduler's address."),
        "max-concurrent-requests": (
            "RunApp.max_concurrent_requests",
            "Model requests at once across the run.",
        ),
        "report-md": ("RunApp.report_md", "Write a Markdown report to this file."),
        "resume": ("RunApp.resume", "Skip the notebooks an earlier report lists as done."),
        "task": ("RunApp.task", "The task for the agent."),
        "task-file": ("RunApp.task_file", "A file holding the task."),
        "jobs": ("RunApp.jobs", "Notebooks run at the same time."),
        "timeout": ("RunApp.timeout", "Seconds each notebook's run may take."),
        "report": ("RunApp.report", "Write a JSON report to this file."),
        "approval": ("CodexMax.approval", "read-only, ask (the default) or auto."),
        "max-steps": ("CodexMax.max_steps", "Most model requests per notebook."),
        "max-turns": ("CodexMax.max_steps", "The same as --max-steps."),
        "cell-timeout": ("CodexMax.cell_timeout", "Seconds a cell may run."),
        "workspace": ("CodexMax.workspace_root", "The folder the agent may change."),
    }
    flags = {
        **base_flags,
        "full-auto": (
            {"CodexMax": {"approval": "auto"}},
            "Allow everything inside the workspace (the same as --approval auto).",
        ),
        "quiet": ({"RunApp": {"quiet": True}}, "No live log."),
        "new-session": (
            {"RunApp": {"new_session": True}},
            "Start a new session instead of continuing the notebook's.",
        ),
    }

    def _task_text(self) -> str:
        if self.task and self.task_file:
            raise UsageError("give --task or --task-file, not both")
        if self.task_file:
            from ..fileio import NotRegularFile, read_regular

            try:
                raw = read_regular(Path(self.task_file).expanduser())
            except NotRegularFile as exc:
                raise UsageError(f"--task-file {self.task_file}: is {exc.kind}") from exc
            except OSError as exc:
                raise UsageError(f"cannot read {self.task_file}: {exc.strerror or exc}") from exc
            try:
                return raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise UsageError(f"--task-file {self.task_file}: not UTF-8 text") from exc
        if self.task == "-":
            return sys.stdin.read().strip()
        return self.task.strip()

    def run(self) -> int:
        from ..keyhandoff import restart_without_key

        # Kernels and shell commands come next: the key leaves this process's environment
        # (which they could read in /proc) before any of them starts.
        restart_without_key(self.settings().api_key_env)
        if not self.extra_args:
            raise UsageError(
                "give one or more notebooks: jupyter codexmax run NOTEBOOK... --task TEXT"
            )
        task = self._task_text()
        if not task:
            raise UsageError("no task: give --task TEXT or --task-file FILE")
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if not (math.isfinite(self.timeout) and self.timeout >= 0):
            raise UsageError(
                f"--timeout must be a number of seconds above 0 (0: no limit), not {self.timeout:g}"
            )
        executor = self.executor or ("dask" if self.scheduler else "local")
        if executor not in ("local", "dask"):
            raise UsageError(f"--executor must be local or dask, not {executor!r}")
        if self.scheduler and executor != "dask":
            raise UsageError("--scheduler needs --executor dask")
        if self.max_concurrent_requests < 0:
            raise UsageError("--max-concurrent-requests must be 0 (no limit) or more")
        carried: dict[str, Any] = {}
        if self.resume:
            from ..scale.report import ResumeError, done_entries

            try:
                carried = done_entries(self.resume)
            except ResumeError as exc:
                raise UsageError(f"--resume {self.resume}: {exc}") from exc
        report = self.report or self.resume
        for flag, target in (("--report", report), ("--report-md", self.report_md)):
            if target:
                from .run import check_report_path

                problem = check_report_path(target)
                if problem:
                    raise UsageError(f"{flag} {target}: {problem}")
        settings = self.settings()
        if not (executor == "dask" and self.scheduler):
            settings.require_api_key()  # a cluster's workers have their own: they say
        settings.effort_for()
        from .run import RunOptions, Terminated, open_all, print_summary, run_notebooks

        jobs, problems = open_all(self.extra_args, settings, self.new_session)
        if problems:
            from ..secrets import redact

            for problem in problems:
                print(f"jupyter-codexmax: error: {redact(str(problem))}", file=sys.stderr)
            return EXIT_USAGE
        done = [carried[p] for p in map(str, (j.doc.path.resolve() for j in jobs)) if p in carried]
        jobs = [j for j in jobs if str(j.doc.path.resolve()) not in carried]
        if done and not self.quiet:
            print(
                f"jupyter-codexmax: {len(done)} notebook(s) done in {self.resume}, skipped; "
                f"{len(jobs)} to run",
                file=sys.stderr,
            )
        options = RunOptions(
            task=task,
            jobs=self.jobs,
            timeout=self.timeout or None,
            report=report,
            report_md=self.report_md,
            quiet=self.quiet,
            carried=done,
            max_requests=self.max_concurrent_requests,
        )
        try:
            if executor == "dask" and jobs:
                from ..scale.dask_executor import run_on_dask

                status, outcomes = run_on_dask(
                    settings,
                    jobs,
                    options,
                    scheduler=self.scheduler,
                    workers=self.jobs,
                    new_session=self.new_session,
                )
            else:
                status, outcomes = asyncio.run(run_notebooks(settings, jobs, options))
        except Terminated:
            print("jupyter-codexmax: terminated", file=sys.stderr)
            return 143
        print_summary(outcomes)
        return status


class SessionApp(_Base):
    name = "jupyter-codexmax-session"
    description = """Show the jupyter-codexmax session stored in a notebook: model, turns,
    compactions, context size, usage and cost, the summary, the task ledger, the size."""
    as_json = Bool(False, help="Print the stored record as JSON.").tag(config=True)
    flags = {**base_flags, "json": ({"SessionApp": {"as_json": True}}, "Print the record.")}

    def run(self) -> int:
        if len(self.extra_args) != 1:
            raise UsageError("give one notebook: jupyter codexmax session NOTEBOOK")
        from .sessions import show_session

        settings = self.settings()
        return show_session(
            self.extra_args[0],
            as_json=self.as_json,
            cap=settings.session_cap,
            journal=settings.journal,
        )


class CompactApp(_Base):
    name = "jupyter-codexmax-compact"
    description = """Compact the session stored in a notebook now (with the model), and save
    it back."""
    aliases = dict(_model_aliases)

    def run(self) -> int:
        if len(self.extra_args) != 1:
            raise UsageError("give one notebook: jupyter codexmax compact NOTEBOOK")
        from .sessions import compact_notebook

        settings = self.settings()
        settings.require_api_key()
        return compact_notebook(settings, self.extra_args[0])


class StripApp(_Base):
    name = "jupyter-codexmax-strip"
    description = """Remove jupyter-codexmax's session from notebooks (metadata key
    "codexmax"). Idempotent: notebooks without it are not touched. Usable as a git
    pre-commit hook."""

    def run(self) -> int:
        if not self.extra_args:
            raise UsageError("give one or more notebooks: jupyter codexmax strip NOTEBOOK...")
        from .sessions import strip_notebooks

        return strip_notebooks(self.extra_args)


class CodexMaxApp(_Base):
    name = "jupyter-codexmax"
    description = """jupyter-codexmax: a coding agent for notebooks.

    Settings come from jupyter_codexmax_config.py, the environment (OPENAI_API_KEY,
    OPENAI_BASE_URL, CODEXMAX_MODEL, ...) and flags, in that order of priority."""
    subcommands = {
        "run": (RunApp, RunApp.description.splitlines()[0]),
        "review": (
            "jupyter_codexmax.cli.review.ReviewApp",
            "Review notebooks and files, read-only: findings by cell, a verdict.",
        ),
        "session": (SessionApp, "Show the session stored in a notebook."),
        "compact": (CompactApp, "Compact the session stored in a notebook."),
        "strip": (StripApp, "Remove jupyter-codexmax's session from notebooks."),
        "ask": (AskApp, AskApp.description.splitlines()[0]),
        "doctor": (DoctorApp, DoctorApp.description.splitlines()[0]),
        "scripted-server": (ScriptedServerApp, "Run the scripted model server (not a model)."),
    }

    def run(self) -> int:
        if self.subapp is None:
            names = ", ".join(self.subcommands)
            raise UsageError(f"say what to do: jupyter codexmax <{names}>  (--help for more)")
        return EXIT_OK

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        super().start()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``jupyter-codexmax``."""
    from ..secrets import credential_values, redact, register

    # Credentials of this environment are masked in everything this command prints.
    register(*credential_values(os.environ))
    app = CodexMaxApp.instance()
    try:
        app.initialize(argv)
    except SystemExit as exc:
        # traitlets ends a bad command line or config value with status 1; for us that
        # is a usage mistake (2). Help and --version exit 0 and stay so.
        raise SystemExit(EXIT_USAGE if exc.code == 1 else exc.code) from None
    except ConfigError as exc:
        print(f"jupyter-codexmax: error: {redact(str(exc))}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        app.start()
    except Exception:
        # A bug of ours: its traceback, as any, but never with a secret in it.
        import traceback

        print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        raise SystemExit(1) from None
