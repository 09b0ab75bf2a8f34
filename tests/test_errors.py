"""Error bodies of every kind become the right typed error with a one-line message."""

from __future__ import annotations

import json

import pytest

from jupyter_codexmax import errors
from jupyter_codexmax.providers.http import error_from_payload, error_from_response
from jupyter_codexmax.providers.retry import (
    RetryPolicy,
    parse_retry_after,
    parse_retry_after_message,
)


def body(**error: object) -> bytes:
    return json.dumps({"error": error}).encode()


def test_quota_is_never_retried_and_named() -> None:
    err = error_from_response(
        429,
        {"x-request-id": "req_1"},
        body(
            message="You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        ),
    )
    assert isinstance(err, errors.QuotaExceededError)
    assert not err.retryable
    assert "quota" in str(err)
    assert "insufficient_quota" in str(err)
    assert "req_1" in str(err)


def test_context_length_variants() -> None:
    openai = error_from_response(
        400,
        {},
        body(
            message="This model's maximum context length is 128000 tokens.",
            code="context_length_exceeded",
        ),
    )
    vllm = error_from_response(
        400,
        {},
        json.dumps(
            {
                "object": "error",
                "message": "This model's maximum context length is 8192 tokens. "
                "However, you requested 9000 tokens.",
                "type": "BadRequestError",
                "code": 400,
            }
        ).encode(),
    )
    llamacpp = error_from_response(
        400,
        {},
        body(
            message="the request exceeds the available context size",
            type="exceed_context_size_error",
        ),
    )
    in_stream = error_from_payload({"code": "context_length_exceeded", "message": "too long"})
    for err in (openai, vllm, llamacpp, in_stream):
        assert isinstance(err, errors.ContextLengthExceeded), err
        assert not err.retryable


def test_status_classes_and_retryability() -> None:
    cases = [
        (401, errors.AuthenticationError, False),
        (403, errors.AuthenticationError, False),
        (404, errors.NotFoundError, False),
        (400, errors.InvalidRequestError, False),
        (422, errors.InvalidRequestError, False),
        (408, errors.APIError, True),
        (409, errors.APIError, True),
        (429, errors.RateLimitError, True),
        (500, errors.ServerError, True),
        (503, errors.ServerError, True),
    ]
    for status, cls, retryable in cases:
        err = error_from_response(status, {}, body(message="m"))
        assert type(err) is cls, (status, type(err))
        assert err.retryable is retryable, status
        assert err.status == status


def test_x_should_retry_header_is_honoured() -> None:
    assert not error_from_response(500, {"x-should-retry": "false"}, b"").retryable
    assert error_from_response(400, {"x-should-retry": "true"}, b"").retryable


def test_html_and_text_and_empty_bodies() -> None:
    page = (
        b"<html><head><title>503 Service Temporarily Unavailable</title></head>"
        b"<body>nginx</body></html>"
    )
    err = error_from_response(
        503, {"content-type": "text/html"}, page, "proxy.example/v1/responses"
    )
    assert isinstance(err, errors.ServerError)
    assert "503 Service Temporarily Unavailable" in str(err)
    assert "HTML page" in str(err)
    assert "\n" not in str(err)
    assert "plain words" in str(error_from_response(502, {}, b"plain words\n here"))
    assert "empty response body" in str(error_from_response(500, {}, b""))
    assert "not json" in str(error_from_response(400, {}, b"{not json"))


def test_other_json_error_shapes() -> None:
    assert "boom" in str(error_from_response(400, {}, json.dumps({"error": "boom"}).encode()))
    assert "nope" in str(error_from_response(422, {}, json.dumps({"detail": "nope"}).encode()))


def test_in_stream_errors() -> None:
    server = error_from_payload({"code": "server_error", "message": "An error occurred."})
    assert isinstance(server, errors.ServerError)
    assert server.retryable
    invalid = error_from_payload({"code": "invalid_prompt", "message": "Flagged."})
    assert isinstance(invalid, errors.InvalidRequestError)
    assert not invalid.retryable
    limited = error_from_payload(
        {"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}
    )
    assert isinstance(limited, errors.RateLimitError)
    assert limited.retry_after == 1.5
    unknown = error_from_payload({"code": "something_new", "message": "?"})
    assert unknown.retryable


def test_secrets_in_server_messages_are_masked() -> None:
    from jupyter_codexmax import secrets

    # Not shaped like an sk- key, so only the registration can mask it.
    secrets.register("azure-0f3a9c8e7d6b5a4c")
    err = error_from_response(
        401, {}, body(message="Incorrect API key provided: azure-0f3a9c8e7d6b5a4c.")
    )
    assert "0f3a9c8e7d6b5a4c" not in str(err)
    assert "********" in str(err)


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470) == 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after_message("Please try again in 20ms.") == 0.02
    assert parse_retry_after_message("try again in 3 seconds") == 3.0


def test_backoff_grows_with_jitter_and_respects_limits() -> None:
    policy = RetryPolicy(max_retries=3, base_delay=1.0, max_delay=3.0, retry_after_limit=10)
    err = errors.ServerError("x", status=500)
    delays = [policy.delay(n, err) for n in (1, 2, 3)]
    assert delays[0] is not None
    assert 0.8 <= delays[0] <= 1.2
    assert delays[1] is not None
    assert 1.6 <= delays[1] <= 2.4
    assert delays[2] is not None
    assert delays[2] <= 3.0
    assert policy.delay(4, err) is None
    assert policy.delay(1, errors.InvalidRequestError("x")) is None
    assert policy.delay(1, errors.RateLimitError("x", retry_after=5)) == 5
    assert policy.delay(1, errors.RateLimitError("x", retry_after=60)) is None


@pytest.mark.parametrize("cls", [errors.ConfigError, errors.MissingAPIKeyError])
def test_config_errors_exit_2(cls: type[errors.CodexmaxError]) -> None:
    assert cls("x").exit_code == 2
    assert errors.ModelError("x").exit_code == 1


@pytest.mark.parametrize("code", ["usage_not_included", "invalid_prompt", "cyber_policy"])
def test_account_and_request_codes_in_stream_are_not_retried(code: str) -> None:
    assert not error_from_payload({"code": code, "message": "no"}).retryable
