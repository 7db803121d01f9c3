"""Token estimates made before a call is sent (for rate limits and fair queuing).

The estimate is characters / 4 over everything the request sends (messages, tool
schemas), the usual rule of thumb for English text with BPE tokenizers. It only
needs to be roughly right: rate limiters settle against the provider's reported
usage afterwards, and fair queuing compares calls with each other.
"""

from __future__ import annotations

import msgspec

from providers.messages import ImagePart, Request

__all__ = ["DEFAULT_OUTPUT_ESTIMATE", "estimate_input_tokens", "estimate_output_tokens"]

# Reserved for a request that sets no max_tokens (rate limiters must reserve something).
DEFAULT_OUTPUT_ESTIMATE = 1024
IMAGE_TOKENS = 1600

_encoder = msgspec.json.Encoder()


def estimate_input_tokens(request: Request) -> int:
    chars = 0
    images = 0
    for message in request.messages:
        if isinstance(message.content, str):
            chars += len(message.content)
        else:
            for part in message.content:
                if isinstance(part, ImagePart):
                    images += 1
                else:
                    chars += len(part.text)
        for call in message.tool_calls:
            chars += len(call.name) + len(call.arguments)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(_encoder.encode(tool.parameters))
    return (chars + 3) // 4 + images * IMAGE_TOKENS


def estimate_output_tokens(request: Request) -> int:
    return request.max_tokens or DEFAULT_OUTPUT_ESTIMATE
