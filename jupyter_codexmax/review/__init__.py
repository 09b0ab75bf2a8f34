"""Review mode: the agent, read-only, reports findings located by cell (notebooks) or by
line (files), and ends with a verdict. See docs/review.md."""

from __future__ import annotations

from .findings import FAIL_LEVELS, SEVERITIES, Finding, Scope, Verdict

__all__ = ["FAIL_LEVELS", "SEVERITIES", "Finding", "Scope", "Verdict"]
