"""Error classification, retry hints and secrecy, shared by every family."""

from __future__ import annotations

import json

import pytest

from providers import errors, get_family
from providers.families.base import classify_error, error_event, error_from_event
from providers.secrets import Secret

NOW = 1_767_225_600.0


def classify(status: int, message: str = "boom", **kw: object) -> errors.APIError:
    return classify_error(
        status, message, provider="openai", model="gpt-4o-mini", now=NOW,
        provider_type=kw.pop("provider_type", None), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, errors.BadRequestError, False),
        (401, errors.AuthenticationError, False),
        (403, errors.AuthenticationError, False),
        (404, errors.NotFoundError, False),
        (408, errors.APITimeoutError, True),
        (429, errors.RateLimitError, True),
        (500, errors.ServerError, True),
        (502, errors.ServerError, True),
        (503, errors.OverloadedError, True),
        (529, errors.OverloadedError, True),
    ],
)
def test_status_decides_class_and_retryability(
    status: int, cls: type[errors.APIError], retryable: bool
) -> None:
    err = classify(status)
    assert type(err) is cls
    assert err.retryable is retryable


def test_a_vague_code_does_not_override_a_specific_status() -> None:
    assert type(classify(503, provider_type="server_error")) is errors.OverloadedError
    assert type(classify(529, provider_type="api_error")) is errors.OverloadedError


def test_a_code_refines_a_generic_status() -> None:
    assert type(classify(400, codes=("context_length_exceeded",))) is (
        errors.ContextLengthExceededError
    )
    assert type(classify(500, provider_type="overloaded_error")) is errors.OverloadedError


def test_quota_exhaustion_is_not_retried() -> None:
    err = classify(429, codes=("insufficient_quota",))
    assert type(err) is errors.QuotaExceededError
    assert not err.retryable


def test_context_length_is_told_apart_by_message() -> None:
    err = classify(400, "prompt is too long: 210000 tokens > 200000 maximum")
    assert isinstance(err, errors.ContextLengthExceededError)
    assert not err.retryable


def test_retry_after_and_request_id_come_from_headers() -> None:
    err = classify(429, headers={"retry-after": "2", "x-request-id": "req_1"})
    assert err.retry_after == 2.0
    assert err.request_id == "req_1"


def test_message_names_provider_model_status_and_type() -> None:
    err = classify(429, "Rate limit reached for tokens per min", provider_type="tokens")
    assert (
        str(err) == "429 from openai (gpt-4o-mini) [tokens]: Rate limit reached for tokens per min"
    )


def test_in_stream_error_round_trips_to_its_class() -> None:
    event = error_event("overloaded_error", "Overloaded")
    assert event.kind == "OverloadedError" and event.retryable
    err = error_from_event(event, provider="anthropic", model="claude-sonnet-4-5")
    assert type(err) is errors.OverloadedError
    assert err.status == 200
    assert "error event in stream from anthropic (claude-sonnet-4-5)" in str(err)


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnop",
        "AIzaSyA1234567890abcdefghijklmnop",
        "gsk_abcdefghijklmnop1234",
        "xai-abcdefghijklmnop1234",
    ],
)
def test_keys_echoed_by_a_provider_are_scrubbed(key: str) -> None:
    err = classify(401, f"Incorrect API key provided: {key}. Find your key at ...")
    assert key not in str(err)
    assert key not in err.body
    assert key not in repr(err)
    assert "Incorrect API key provided" in str(err)


def test_bearer_tokens_are_scrubbed() -> None:
    assert "abcdefghijklmnop" not in errors.scrub("header was Bearer abcdefghijklmnop.qrs")


def test_secret_never_shows_itself() -> None:
    secret = Secret("sk-live-abcdefghijklmnop")
    assert "abcdef" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "sk-live-abcdefghijklmnop"
    assert Secret("").__repr__() == "Secret('')"


@pytest.mark.parametrize(
    ("family", "headers", "wait"),
    [
        # Anthropic: RFC 3339 instants; the tokens bucket is empty, requests are not.
        (
            "anthropic",
            {
                "anthropic-ratelimit-requests-remaining": "5",
                "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:01Z",
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:07Z",
            },
            7.0,
        ),
        (
            "anthropic",
            {
                "anthropic-ratelimit-output-tokens-remaining": "0",
                "anthropic-ratelimit-output-tokens-reset": "2026-01-01T00:00:03Z",
            },
            3.0,
        ),
        # OpenAI Chat and Responses: Go durations; both windows empty: the later one.
        (
            "openai",
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20ms",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "1m2.5s",
            },
            62.5,
        ),
        (
            "openai-responses",
            {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "2.5s"},
            2.5,
        ),
        # No bucket reported empty: no guess (a full window can be minutes away).
        (
            "openai-responses",
            {"x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "6m0s"},
            None,
        ),
    ],
)
def test_a_429_without_retry_after_waits_for_the_windows_it_exhausted(
    family: str, headers: dict[str, str], wait: float | None
) -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    if family != "anthropic":
        body = b'{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'
    err = get_family(family).map_error(429, headers, body, provider="p", model="m", now=NOW)
    assert isinstance(err, errors.RateLimitError)
    assert err.retry_after == (None if wait is None else pytest.approx(wait))


def test_retry_after_wins_over_the_window_resets() -> None:
    headers = {
        "retry-after": "4",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "9s",
    }
    err = get_family("openai").map_error(429, headers, b"{}", provider="p", model="m", now=NOW)
    assert err.retry_after == 4.0


@pytest.mark.parametrize(
    ("message", "headers", "limit"),
    [
        # OpenAI's wording
        (
            "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): "
            "Limit 30000, Used 29000, Requested 2000.",
            {},
            "tokens",
        ),
        (
            "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): "
            "Limit 500, Used 500, Requested 1.",
            {},
            "requests",
        ),
        ("Rate limit reached ... on requests per day (RPD): Limit 200", {}, "requests"),
        # Anthropic's
        (
            "This request would exceed your organization's rate limit of 50,000 input "
            "tokens per minute.",
            {},
            "tokens",
        ),
        ("... exceed your organization's rate limit of 50 requests per minute", {}, "requests"),
        # The headers decide when one kind is exhausted and the other is not.
        ("Too many requests", {"x-ratelimit-remaining-tokens": "0",
                               "x-ratelimit-remaining-requests": "12"}, "tokens"),
        ("Too many requests", {"anthropic-ratelimit-requests-remaining": "0",
                               "anthropic-ratelimit-input-tokens-remaining": "900"}, "requests"),
        ("Too many requests", {"anthropic-ratelimit-output-tokens-remaining": "0"}, "tokens"),
        # Nothing says which: None (the limiter then cuts both).
        ("Too many requests", {}, None),
        ("Too many requests", {"x-ratelimit-remaining-tokens": "0",
                               "x-ratelimit-remaining-requests": "0"}, None),
    ],
)  # fmt: skip
def test_a_429_names_the_limit_it_hit(
    message: str, headers: dict[str, str], limit: str | None
) -> None:
    error = classify(429, message, headers=headers)
    assert isinstance(error, errors.RateLimitError)
    assert error.limit == limit


def test_gemini_429_names_the_limit_from_its_quota_failure() -> None:
    def body(metric: str) -> bytes:
        violation = {
            "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
            "quotaId": "GenerateContentPerMinutePerProjectPerModel-FreeTier",
        }
        detail = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}
        error = {"code": 429, "message": "You exceeded your current quota, please check your plan",
                 "status": "RESOURCE_EXHAUSTED", "details": [detail]}  # fmt: skip
        return json.dumps({"error": error}).encode()

    gemini = get_family("gemini")
    for metric, limit in (
        ("generate_content_free_tier_input_token_count", "tokens"),
        ("generate_content_free_tier_requests", "requests"),
    ):
        error = gemini.map_error(429, {}, body(metric), provider="gemini", model="g", now=NOW)
        assert isinstance(error, errors.RateLimitError)
        assert error.limit == limit


def test_the_key_in_use_is_masked_but_a_key_too_short_to_hide_is_left_alone() -> None:
    error = errors.ProviderError("invalid x-api-key: my-local-secret-key; check your tokens")
    error.redact("my-local-secret-key")
    assert error.message == "invalid x-api-key: my-***; check your tokens"
    # A one-letter key of a local server: masking it would mangle every word with a k.
    short = errors.ProviderError("would exceed 150000 input tokens per minute")
    short.redact("k")
    assert short.message == "would exceed 150000 input tokens per minute"
