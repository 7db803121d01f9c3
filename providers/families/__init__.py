"""Wire-protocol families: one sans-IO module per API dialect.

===================  ==============================================================
name                 API
===================  ==============================================================
``openai``           OpenAI Chat Completions (and every OpenAI-compatible server)
``openai-responses`` OpenAI Responses
``anthropic``        Anthropic Messages
``gemini``           Google Gemini (Generative Language API)
===================  ==============================================================
"""

from __future__ import annotations

from .base import Endpoint, Family, HttpRequest, Quirks, StreamDecoder

__all__ = [
    "FAMILY_NAMES",
    "Endpoint",
    "Family",
    "HttpRequest",
    "Quirks",
    "StreamDecoder",
    "get_family",
]

FAMILY_NAMES = ("openai", "openai-responses", "anthropic", "gemini")

_instances: dict[str, Family] = {}


def get_family(name: str) -> Family:
    """The family called ``name`` (one of :data:`FAMILY_NAMES`).

    Families are stateless, so one instance per name serves every call.

    Raises:
        ValueError: no family has that name.
    """
    family = _instances.get(name)
    if family is not None:
        return family
    if name == "openai":
        from .openai_chat import OpenAIChat

        family = OpenAIChat()
    elif name == "openai-responses":
        from .openai_responses import OpenAIResponses

        family = OpenAIResponses()
    elif name == "anthropic":
        from .anthropic import AnthropicMessages

        family = AnthropicMessages()
    elif name == "gemini":
        from .gemini import Gemini

        family = Gemini()
    else:
        raise ValueError(f"unknown wire family {name!r}; choose one of: {', '.join(FAMILY_NAMES)}")
    _instances[name] = family
    return family
