"""A health check of one endpoint: list its models (free everywhere, and it needs
a valid key), and say what happened in a sentence.

Every family lists at ``GET {base_url}/models`` (OpenAI ``…/v1/models``,
Anthropic ``…/v1/models``, Gemini ``…/v1beta/models``); the key and
version headers are those the family's request builder puts on a call.
"""

from __future__ import annotations

import time

import httpx
import msgspec

from .errors import ProviderError
from .families import Endpoint, Family, get_family
from .messages import Message, Request

__all__ = ["Health", "check_endpoint"]


class Health(msgspec.Struct, kw_only=True, frozen=True):
    """The outcome of one check (never holds a key)."""

    provider: str
    family: str
    base_url: str
    ok: bool
    status: int | None
    seconds: float
    models: int | None  # how many the list held
    detail: str


def _headers(endpoint: Endpoint, fam: Family) -> dict[str, str]:
    """The headers a call to ``endpoint`` carries (key, version, extras), taken from
    the family's own request builder so a check authenticates exactly as a call."""
    probe = Request(
        model="health-check", messages=[Message.user("ping")], max_tokens=16
    )  # 16: every family's minimum
    headers = fam.build_request(probe, endpoint, stream=False).wire_headers()
    headers.pop("content-type", None)
    return headers


def _count(body: bytes) -> int | None:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(data, dict):
        for field in ("data", "models"):
            if isinstance(data.get(field), list):
                return len(data[field])
    return None


async def check_endpoint(
    http: httpx.AsyncClient, endpoint: Endpoint, family: str, *, limit: float = 10.0
) -> Health:
    """List ``endpoint``'s models within ``limit`` seconds; never raises for what
    the endpoint does (the outcome says it)."""
    fam = get_family(family)
    url = endpoint.url("/models")
    started = time.monotonic()

    def outcome(ok: bool, status: int | None, detail: str, models: int | None = None) -> Health:
        if endpoint.api_key is not None:
            detail = detail.replace(endpoint.api_key.reveal(), "***")
        return Health(
            provider=endpoint.provider,
            family=fam.name,
            base_url=endpoint.base_url,
            ok=ok,
            status=status,
            seconds=time.monotonic() - started,
            models=models,
            detail=detail,
        )

    try:
        response = await http.get(
            url,
            headers=_headers(endpoint, fam),
            params=endpoint.query or None,
            timeout=limit,
        )
    except httpx.TimeoutException:
        return outcome(False, None, f"no answer from {url} within {limit:g} s")
    except httpx.HTTPError as exc:
        return outcome(False, None, f"cannot reach {url}: {exc or type(exc).__name__}")
    if response.status_code >= 300:
        error: ProviderError = fam.map_error(
            response.status_code,
            response.headers,
            response.content,
            provider=endpoint.provider,
            model=None,
            now=time.time(),
        )
        return outcome(False, response.status_code, f"{type(error).__name__}: {error}")
    models = _count(response.content)
    listed = f"{models} models listed" if models is not None else "answered"
    return outcome(True, response.status_code, listed, models)
