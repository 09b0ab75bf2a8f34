"""``update_plan``: the agent's plan, with each step's status, shown to the user."""

from __future__ import annotations

from typing import Any

from ..events import PlanUpdated
from .registry import Tool, ToolContext, ToolError, ToolResult

__all__ = ["UpdatePlan"]

STATUSES = ("pending", "in_progress", "completed")


class UpdatePlan(Tool):
    name = "update_plan"
    description = (
        "Set the plan for the task: short steps, each pending, in_progress or completed "
        "(at most one in_progress). Send the whole plan each time."
    )
    parameters = {
        "type": "object",
        "properties": {
            "explanation": {"type": "string", "maxLength": 2000},
            "plan": {
                "type": "array",
                "maxItems": 50,
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "string", "maxLength": 500},
                        "status": {"type": "string", "enum": list(STATUSES)},
                    },
                    "required": ["step", "status"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["plan"],
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        plan = args.get("plan") or []
        done = sum(1 for s in plan if isinstance(s, dict) and s.get("status") == "completed")
        return f"update_plan {done}/{len(plan)} done"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        steps = [{"step": str(s["step"]), "status": str(s["status"])} for s in args["plan"]]
        if sum(1 for s in steps if s["status"] == "in_progress") > 1:
            raise ToolError("at most one step can be in_progress")
        ctx.state["plan"] = steps
        explanation = str(args.get("explanation") or "")
        ctx.emit(PlanUpdated(steps, explanation))
        done = sum(1 for s in steps if s["status"] == "completed")
        return ToolResult(f"plan updated: {done}/{len(steps)} steps done", "")
