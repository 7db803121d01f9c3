"""providers: everything about talking to LLM APIs, and nothing about scheduling.

Usable alone: a normalized request and event vocabulary, a conformant SSE decoder,
sans-IO wire-protocol families (OpenAI Chat Completions and Responses, Anthropic
Messages, Google Gemini), typed errors with retry hints, rate-limit headers, and a
thin async client over httpx that runs on trio and asyncio.
"""

from __future__ import annotations

from .assemble import ResponseAssembler as ResponseAssembler
from .assemble import assemble as assemble
from .client import Client as Client
from .client import EventStream as EventStream
from .client import complete as complete
from .client import stream as stream
from .errors import APIError as APIError
from .errors import APITimeoutError as APITimeoutError
from .errors import AuthenticationError as AuthenticationError
from .errors import BadRequestError as BadRequestError
from .errors import ConnectError as ConnectError
from .errors import ContentFilterError as ContentFilterError
from .errors import ContextLengthExceededError as ContextLengthExceededError
from .errors import NotFoundError as NotFoundError
from .errors import OverloadedError as OverloadedError
from .errors import ProviderError as ProviderError
from .errors import QuotaExceededError as QuotaExceededError
from .errors import RateLimitError as RateLimitError
from .errors import ReadError as ReadError
from .errors import RequestError as RequestError
from .errors import ServerError as ServerError
from .errors import SSEError as SSEError
from .errors import StreamDecodeError as StreamDecodeError
from .errors import StreamProtocolError as StreamProtocolError
from .errors import TimeoutError as TimeoutError
from .errors import ToolArgumentsError as ToolArgumentsError
from .errors import TransportError as TransportError
from .events import Citations as Citations
from .events import ErrorEvent as ErrorEvent
from .events import Finish as Finish
from .events import FinishReason as FinishReason
from .events import ReasoningDelta as ReasoningDelta
from .events import RefusalDelta as RefusalDelta
from .events import Response as Response
from .events import Start as Start
from .events import StreamEvent as StreamEvent
from .events import TextDelta as TextDelta
from .events import ToolCallDelta as ToolCallDelta
from .events import ToolCallDone as ToolCallDone
from .events import ToolCallStart as ToolCallStart
from .events import Usage as Usage
from .families import FAMILY_NAMES as FAMILY_NAMES
from .families import Endpoint as Endpoint
from .families import Family as Family
from .families import HttpRequest as HttpRequest
from .families import Quirks as Quirks
from .families import get_family as get_family
from .messages import CacheHint as CacheHint
from .messages import ImagePart as ImagePart
from .messages import Message as Message
from .messages import ReasoningPart as ReasoningPart
from .messages import Request as Request
from .messages import ResponseFormat as ResponseFormat
from .messages import TextPart as TextPart
from .messages import ToolCall as ToolCall
from .messages import ToolChoice as ToolChoice
from .messages import ToolSpec as ToolSpec
from .presets import PRESETS as PRESETS
from .presets import Preset as Preset
from .presets import endpoint_from_preset as endpoint_from_preset
from .presets import get_preset as get_preset
from .ratelimits import RateLimitInfo as RateLimitInfo
from .secrets import Secret as Secret
from .sse import ServerSentEvent as ServerSentEvent
from .sse import SSEDecoder as SSEDecoder
from .tools import Tool as Tool
from .tools import tool_spec as tool_spec
from .tools import tools_from as tools_from

__all__ = [
    "FAMILY_NAMES",
    "PRESETS",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CacheHint",
    "Citations",
    "Client",
    "ConnectError",
    "ContentFilterError",
    "ContextLengthExceededError",
    "Endpoint",
    "ErrorEvent",
    "EventStream",
    "Family",
    "Finish",
    "FinishReason",
    "HttpRequest",
    "ImagePart",
    "Message",
    "NotFoundError",
    "OverloadedError",
    "Preset",
    "ProviderError",
    "Quirks",
    "QuotaExceededError",
    "RateLimitError",
    "RateLimitInfo",
    "ReadError",
    "ReasoningDelta",
    "ReasoningPart",
    "RefusalDelta",
    "Request",
    "RequestError",
    "Response",
    "ResponseAssembler",
    "ResponseFormat",
    "SSEDecoder",
    "SSEError",
    "Secret",
    "ServerError",
    "ServerSentEvent",
    "Start",
    "StreamDecodeError",
    "StreamEvent",
    "StreamProtocolError",
    "TextDelta",
    "TextPart",
    "TimeoutError",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "ToolCallStart",
    "ToolChoice",
    "ToolSpec",
    "TransportError",
    "Usage",
    "assemble",
    "complete",
    "endpoint_from_preset",
    "get_family",
    "get_preset",
    "stream",
    "tool_spec",
    "tools_from",
]
