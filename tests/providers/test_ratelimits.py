"""Rate-limit and retry-after headers, as providers send them."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.ratelimits import (
    RateLimitInfo,
    parse_duration,
    parse_rate_limit_headers,
    parse_retry_after,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("17", 17.0),
        ("250us", 0.00025),
    ],
)
def test_durations_as_providers_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s1", "-3", "1s junk", "nan", "inf"])
def test_bogus_durations_are_none(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_headers() -> None:
    info = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "1m30s",
        },
        NOW,
    )
    assert info == RateLimitInfo(
        requests_limit=10000,
        requests_remaining=9999,
        requests_reset=pytest.approx(0.006),
        tokens_limit=30_000_000,
        tokens_remaining=29_999_000,
        tokens_reset=90.0,
    )


def test_anthropic_headers_with_rfc3339_resets() -> None:
    info = parse_rate_limit_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:01Z",
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "39000",
            "anthropic-ratelimit-input-tokens-reset": "2026-01-01T00:00:30+00:00",
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "8000",
            "anthropic-ratelimit-output-tokens-reset": "2025-12-31T23:59:00Z",
            "retry-after": "12",
        },
        NOW,
    )
    assert info.requests_limit == 50
    assert info.requests_remaining == 49
    assert info.requests_reset == pytest.approx(1.0)
    assert info.input_tokens_reset == pytest.approx(30.0)
    assert info.output_tokens_reset == 0.0  # a reset in the past is now, not negative
    assert info.input_tokens_remaining == 39000
    assert info.retry_after == 12.0
    assert info.tokens_limit is None


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}, NOW) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}, NOW) == 1.5
    http_date = email.utils.formatdate(NOW + 20, usegmt=True)
    assert parse_retry_after({"retry-after": http_date}, NOW) == pytest.approx(20.0)
    assert parse_retry_after({"retry-after": "whenever"}, NOW) is None
    assert parse_retry_after({"retry-after-ms": "bogus", "retry-after": "2"}, NOW) == 2.0
    assert parse_retry_after({}, NOW) is None


def test_malformed_values_are_ignored() -> None:
    info = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "lots",
            "x-ratelimit-remaining-requests": "-5",
            "x-ratelimit-reset-tokens": "later",
        },
        NOW,
    )
    assert info.requests_limit is None
    assert info.tokens_reset is None
    assert info.empty


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-reset-tokens",
                "retry-after",
                "retry-after-ms",
                "anthropic-ratelimit-tokens-reset",
                "anthropic-ratelimit-requests-limit",
            ]
        ),
        st.text(max_size=30),
    )
)
def test_any_header_values_never_raise(headers: dict[str, str]) -> None:
    info = parse_rate_limit_headers(headers, NOW)
    for name in info.__struct_fields__:
        value = getattr(info, name)
        assert value is None or value >= 0
