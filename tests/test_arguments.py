"""Tool arguments checked at the boundary (issue 10): one schema per tool, limits that hold
where a schema says nothing, paths capped and resolved in linear time, and every failure
inside a tool given back to the model as that call's output."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import Session, call, make_notebook

from jupyter_codexmax.config import CodexMax, load_settings
from jupyter_codexmax.errors import ConfigError
from jupyter_codexmax.testing import ScriptedModelServer
from jupyter_codexmax.tools import default_tools
from jupyter_codexmax.tools.registry import (
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolResult,
    check_arguments,
)
from jupyter_codexmax.tools.schema import MAX_DEPTH
from jupyter_codexmax.workspace import PathError, Workspace

REGISTRY = default_tools()


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("run_cells", '{"all": true, "timeout": NaN}', "hold NaN"),
        ("run_cells", '{"all": true, "timeout": -Infinity}', "hold -Infinity"),
        ("run_cells", '{"all": true, "timeout": 1e999}', "'timeout' must be a finite number"),
        ("run_cells", '{"all": true, "timeout": 0}', "'timeout' must be more than 0, not 0"),
        ("read_notebook", '{"start": 0}', "'start' must be at least 1, not 0"),
        ("read_file", '{"path": "a", "start_line": -3}', "'start_line' must be at least 1"),
        ("edit_notebook", '{"edits": []}', "'edits' must have at least 1 item, not be empty"),
        ("search_files", '{"pattern": ""}', "'pattern' must have at least 1 character"),
        ("read_file", json.dumps({"path": "p" * 5000}), "has 5,000 characters; at most 4,096"),
        ("read_file", '{"path": "a", "x' + "k" * 5000 + '": 1}', r"\['xkkkk.*\(5,001 characters\)"),
        ("read_file", '{"path": "a", "end_line": 10000000000000}', "at most 1e\\+12"),
        ("update_plan", '{"plan": ' + "[" * 40 + "]" * 40 + "}", "nest 41 levels deep"),
        ("read_file", '{"path": ' + "[" * 50_000 + "]" * 50_000 + "}", "nest too deeply"),
    ],
)
def test_the_schema_and_the_limits_hold_before_a_tool_runs(
    name: str, raw: str, message: str
) -> None:
    with pytest.raises(ToolError, match=message) as info:
        REGISTRY.prepare(name, raw)
    assert len(str(info.value)) < 600, "the value is not echoed back whole"


def test_every_tools_schema_is_checkable_and_bounded() -> None:
    """Each tool's schema is one the checker reads; a string without a maxLength still has
    the general cap, and the nesting depth holds for every tool."""
    nested: Any = 1
    for _ in range(MAX_DEPTH + 1):
        nested = [nested]
    for tool in REGISTRY.tools.values():
        with pytest.raises(ToolError, match="levels deep"):
            check_arguments(tool.parameters, {"x": nested})
    deep: Any = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    check_arguments({"type": "array"}, deep)  # at the limit: accepted
    with pytest.raises(ToolError, match="nest 33 levels deep"):
        check_arguments({"type": "array"}, [deep])
    with pytest.raises(ToolError, match="must be a finite number"):
        check_arguments({"type": "number"}, math.nan)


def test_an_unknown_tool_name_is_not_echoed_back_whole() -> None:
    with pytest.raises(ToolError) as info:
        REGISTRY.prepare("x" * 10_000, "{}")
    assert "(10,000 characters)" in str(info.value)
    assert len(str(info.value)) < 400


def test_paths_are_capped_and_resolved_in_linear_time(tmp_path: Path) -> None:
    ws = Workspace(tmp_path.resolve())
    with pytest.raises(PathError, match="the path is 10,000,000 characters long; at most 4,096"):
        ws.resolve("a/" * 5_000_000)
    with pytest.raises(PathError, match="a name in the path is 256 characters long"):
        ws.resolve("n" * 256)
    # Checking that a resolved path is inside the root no longer walks its parents (one
    # Path each): a 1 MB path took seconds, and 10 MB ran for minutes.
    deep = Path("/" + "/".join(["d"] * 500_000))
    started = time.monotonic()
    assert not ws.contains(deep)
    assert ws.contains(tmp_path.resolve() / Path("/".join(["d"] * 500_000)))
    assert time.monotonic() - started < 2
    longest = "/".join(["a"] * 2_000)
    started = time.monotonic()
    with pytest.raises(PathError, match="no such file"):
        ws.resolve(longest, must_exist=True)
    assert time.monotonic() - started < 1


def test_a_symlink_loop_is_a_path_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(PathError, match="a"):
        Workspace(tmp_path.resolve()).resolve("a/x", must_exist=True)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("cell_timeout", -1),
        ("cell_timeout", math.nan),
        ("cell_timeout", math.inf),
        ("stream_idle_timeout", 0),
        ("response_time_limit", -5),
        ("search_time_limit", 0),
        ("max_steps", 0),
        ("repeated_failure_limit", 1),
        ("tool_output_limit", 10),
        ("retry_max_delay", -1),
    ],
)
def test_times_and_counts_must_be_positive(setting: str, value: float) -> None:
    settings = load_settings(read_files=False)
    with pytest.raises(ConfigError, match="must be"):
        setattr(settings, setting, value)


class Failing(Tool):
    """A tool that fails the way the machine fails: a full disk, then a bug."""

    name = "failing"
    description = "Fails."
    parameters = {"type": "object", "properties": {"how": {"type": "string"}}}  # noqa: RUF012

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        if args["how"] == "disk":
            raise OSError(28, "No space left on device", str(ctx.workspace.root / "out.csv"))
        return ToolResult(str(1 / 0))


@pytest.mark.anyio
async def test_any_failure_inside_a_tool_goes_back_to_the_model(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """An OSError (a full disk), a bug (ZeroDivisionError), a name too long once joined to
    the root: the model reads why, and the turn goes on and ends with its answer."""
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    long_rel = "/".join(["e" * 200] * 20) + "/" + "f" * 75  # 4,095: too long with the root
    scripted_server.load(
        [
            {"calls": [call("failing", {"how": "disk"}) | {"id": "c1"}]},
            {"calls": [call("failing", {"how": "bug"}) | {"id": "c2"}]},
            {"calls": [call("read_file", {"path": long_rel}) | {"id": "c3"}]},
            "All three failed, as expected.",
        ]
    )
    session = Session(scripted_settings, path)
    session.agent.tools = ToolRegistry([*default_tools().tools.values(), Failing()])
    try:
        result = await session.agent.run_turn("go")
    finally:
        await session.close()
    assert result.status == "done", result.error
    assert result.final_text == "All three failed, as expected."
    told = session.outputs()
    assert told["c1"] == f"error: No space left on device: {tmp_path.resolve() / 'out.csv'}"
    assert told["c2"] == "error: ZeroDivisionError: division by zero"
    assert told["c3"].startswith("error: ") and told["c3"].endswith(": File name too long")
