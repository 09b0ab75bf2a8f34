"""Shared fixtures. Every test runs isolated from the user's configuration and environment
(``codexmax_isolated``); the scripted model server is one per session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["jupyter_codexmax.testing.pytest_plugin"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    """The suite reads real notebooks and recorded traffic from ``../shared`` (beside the
    repository): without it, say so in one line instead of failing at collection."""
    if not (SHARED / "corpus" / "MANIFEST.tsv").is_file():
        pytest.exit(
            f"the shared reference data is missing: the tests expect it at {SHARED} "
            "(the folder beside this repository that holds corpus/, recorded/ and "
            "openai-openapi/)",
            returncode=2,
        )


@pytest.fixture(autouse=True)
def _isolated(codexmax_isolated: Path) -> Path:
    return codexmax_isolated


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only reference data beside the repository (``../shared``)."""
    if not (SHARED / "recorded").is_dir():
        pytest.fail(f"the shared reference data is missing: expected it at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def spec_validator(shared: Path) -> Callable[[str, dict[str, Any]], list[str]]:
    """Validate a request body against a schema of the official OpenAI OpenAPI spec.

    As ``openai-openapi/NOTE.md`` says: every ``oneOf`` becomes ``anyOf`` (the spec's
    discriminated unions overlap), then Draft 2020-12 validation against
    ``#/components/schemas/<name>``. Returns the error messages (empty when valid).
    """
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = json.loads((shared / "openai-openapi" / "openapi.json").read_text())

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {("anyOf" if k == "oneOf" else k): rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    uri = "urn:openai-openapi"
    resource = Resource.from_contents(rewrite(document), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    validators: dict[str, Draft202012Validator] = {}

    def validate(schema: str, body: dict[str, Any]) -> list[str]:
        if schema not in validators:
            validators[schema] = Draft202012Validator(
                {"$ref": f"{uri}#/components/schemas/{schema}"}, registry=registry
            )
        errors = sorted(validators[schema].iter_errors(body), key=lambda e: list(e.path))
        return [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message[:300]}" for e in errors]

    return validate
