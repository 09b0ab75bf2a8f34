"""The agent: what it may do, its limits, and how long sessions are kept."""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Dict, Enum, Float, HasTraits, Int, List, Unicode, validate

from ..errors import ConfigError

__all__ = ["APPROVALS", "AgentSettings"]

#: The approval levels (``agent/approvals.py`` says what each allows).
APPROVALS = ("read-only", "ask", "auto")


class AgentSettings(HasTraits):
    """Settings of :class:`~jupyter_codexmax.config.CodexMax`: the agent and its sessions."""

    approval = Enum(
        list(APPROVALS),
        default_value="ask",
        help="""What the agent may do without asking. ``read-only``: it reads; edits come
        back as proposals. ``ask``: notebook edits are applied (undo restores them);
        running cells, shell commands, kernel restarts and writing other files ask first
        (headless runs cannot ask: they refuse, and tell the model). ``auto``: everything
        inside the workspace. Environment: CODEXMAX_APPROVAL.""",
    ).tag(config=True, env="CODEXMAX_APPROVAL")

    workspace_root = Unicode(
        "",
        help="""The folder the agent may read and change. Default: the nearest folder
        holding ``.git`` above the notebook, else the notebook's folder.""",
    ).tag(config=True)

    allow_destructive_outside_workspace = Bool(
        False,
        help="""Let shell commands delete, move or overwrite paths outside the workspace,
        and run ``sudo``. Off: such commands are refused at every approval level.""",
    ).tag(config=True)

    cell_timeout = Float(
        600.0,
        help="""Seconds a cell may run before the kernel is interrupted. A cap: the model
        can ask for less per run, never more.""",
    ).tag(config=True)

    max_steps = Int(
        200,
        help="""Most requests to the model in one turn (one message from you); the turn
        stops with an error past it.""",
    ).tag(config=True)

    repeated_failure_limit = Int(
        3,
        help="""The same tool call (same tool, same arguments) failing the same way this
        many times without a call succeeding in between: the model is told to change
        course. Two more, and the turn stops with an error instead of looping.""",
    ).tag(config=True)

    search_time_limit = Float(
        2.0,
        help="""Seconds ``search_files`` may spend matching its pattern in one file; a
        file that takes longer (a pattern that backtracks without end, such as
        ``(a+)+$``) is given up and named in the result.""",
    ).tag(config=True)

    tool_output_limit = Int(
        24_000,
        help="""Characters of one tool result kept for the model; longer results are cut
        head and tail, with a marker saying how much was cut.""",
    ).tag(config=True)

    agents_md_limit = Int(
        32_768,
        help="""Bytes of AGENTS.md instructions (from the workspace root down to the
        notebook's folder) added to the conversation.""",
    ).tag(config=True)

    # -- long sessions ------------------------------------------------------------------------
    compaction = Enum(
        ["auto", "local"],
        default_value="auto",
        help="""How the history is compacted. ``auto``: the server's compaction endpoint
        (``POST /responses/compact``) where the provider has one, else (or when it fails) a
        hand-off summary written by the model. ``local``: always the summary.""",
    ).tag(config=True)

    compaction_threshold = Float(
        0.9,
        help="""Compact before a request when the context would pass this share of the
        model's window (the server's last report plus an estimate of what was added).""",
    ).tag(config=True)

    compaction_user_budget = Int(
        20_000,
        help="""Tokens of the most recent user messages kept word for word through a
        compaction (and stored with the session).""",
    ).tag(config=True)

    compaction_max_attempts = Int(
        3,
        help="""Compactions tried in a row before giving up with an error, when one does
        not bring the context under the threshold.""",
    ).tag(config=True)

    session_cap = Int(
        65_536,
        min=8_192,
        help="""Bytes the session record may take in the notebook's metadata (at least
        8192); over it, the oldest parts are dropped (see docs/session.md).""",
    ).tag(config=True)

    journal = Bool(
        True,
        help="""Keep each session's full transcript as JSON lines in the Jupyter data folder
        (``codexmax/sessions/``), for audit and exact resume on this machine.""",
    ).tag(config=True)

    prices = Dict(
        help="""Prices for the cost estimate, in US dollars per million tokens, by model:
        ``{"my-model": {"input": 1.25, "cached_input": 0.125, "output": 10.0}}``. Known
        OpenAI models have list prices built in.""",
    ).tag(config=True)

    kernel_keeps_api_key = Bool(
        False,
        help="""Leave the agent's API key variable in the kernel's environment, for
        notebooks that call the same API themselves. Off: the kernel does not get it.
        Either way, tool output is redacted before the model sees it.""",
    ).tag(config=True)

    kernel_credentials = List(
        Unicode(),
        help="""Credential variables a headless run's kernel keeps, by name, for notebooks
        that need them (``["AWS_SECRET_ACCESS_KEY", "DATABASE_URL"]``). Every other
        credential (by name: ``*_TOKEN``, ``*_KEY``, ``*PASSWORD``...; by shape: known token
        formats, URLs with a password) is left out of the kernel's environment. Kept or
        not, their values are masked in every output the agent reads or writes.""",
    ).tag(config=True)

    @validate("cell_timeout", "search_time_limit")
    def _check_agent_seconds(self, proposal: dict[str, Any]) -> float:
        from ._requests import positive_seconds

        return positive_seconds(proposal["value"])

    @validate("max_steps", "tool_output_limit", "repeated_failure_limit")
    def _check_agent_count(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        least = {"tool_output_limit": 1_000, "repeated_failure_limit": 2}.get(
            proposal["trait"].name, 1
        )
        if value < least:
            raise ConfigError(f"must be at least {least:,}, not {value}")
        return value
