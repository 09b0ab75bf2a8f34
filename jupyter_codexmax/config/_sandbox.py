"""The OS sandbox for the agent's shell commands and headless runs' kernels."""

from __future__ import annotations

from traitlets import Bool, HasTraits, List, Unicode

__all__ = ["SandboxSettings"]


class SandboxSettings(HasTraits):
    """Settings of :class:`~jupyter_codexmax.config.CodexMax`: the sandbox (docs/agent.md,
    "The sandbox")."""

    sandbox = Bool(
        True,
        help="""Run the agent's shell commands in the OS sandbox (Linux Landlock, and
        namespaces where the machine allows them): writes only in the workspace and the temp
        folders, ``.git`` read-only, no network unless ``sandbox_network``. Off, or where
        the machine has no sandbox, commands run unconfined and the ``auto`` level asks
        before each one (headless runs refuse them). ``jupyter codexmax doctor`` says which
        is in force. Environment: CODEXMAX_SANDBOX (``0`` or ``1``).""",
    ).tag(config=True, env="CODEXMAX_SANDBOX")

    sandbox_network = Bool(
        False,
        help="""Let sandboxed commands (and sandboxed kernels) use the network. Off: they
        get a network namespace of their own with only a loopback interface (or, where
        namespaces are not available, TCP is denied).""",
    ).tag(config=True)

    sandbox_writable_roots = List(
        Unicode(),
        help="""More folders sandboxed commands may write, besides the workspace and the
        temp folders (a cache such as ``~/.cache/pip``, a virtual environment outside the
        workspace). ``~`` is expanded; folders that do not exist are skipped.""",
    ).tag(config=True)

    sandbox_kernel = Bool(
        True,
        help="""Start the kernel of a headless run (``jupyter codexmax run``) in the same
        sandbox as shell commands, so cells cannot write outside the workspace either. A
        kernel you started yourself (JupyterLab, ``%%agent``) is never sandboxed.""",
    ).tag(config=True)
