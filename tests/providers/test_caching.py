"""Automatic prompt-cache breakpoint placement (providers.caching)."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.caching import (
    IMAGE_TOKENS,
    MAX_BREAKPOINTS,
    CachePlan,
    estimate_tokens,
    min_cacheable_tokens,
    plan_cache_breakpoints,
    system_parts,
)
from providers.errors import RequestError
from providers.messages import (
    CacheHint,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    Request,
    TextPart,
    ToolCall,
    ToolSpec,
)

SONNET = "claude-sonnet-4-5-20250929"


def words(tokens: int) -> str:
    """Text that the estimate (chars / 4) counts as exactly ``tokens`` tokens."""
    return "abcd" * tokens


def request(messages: list[Message], **kw: object) -> Request:
    kw.setdefault("model", SONNET)
    return Request(messages=messages, **kw)  # type: ignore[arg-type]


def big_tool(name: str, tokens: int) -> ToolSpec:
    return ToolSpec(name=name, description=words(tokens))


@pytest.mark.parametrize(
    ("model", "minimum"),
    [
        ("claude-sonnet-4-5-20250929", 1024),
        ("claude-sonnet-4-6", 1024),
        ("claude-sonnet-4-20250514", 1024),
        ("claude-3-7-sonnet-latest", 1024),
        ("claude-3-5-sonnet-20241022", 1024),
        ("claude-opus-4-20250514", 1024),
        ("claude-opus-4-1-20250805", 1024),
        ("claude-3-opus-20240229", 1024),
        ("claude-opus-4-5-20251101", 4096),
        ("claude-opus-4-6", 4096),
        ("claude-opus-4-7", 4096),
        ("claude-opus-4.6", 4096),  # OpenRouter-style dotted names
        ("claude-haiku-4-5-20251001", 4096),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", 4096),  # Bedrock ids
        ("claude-3-5-haiku-20241022", 2048),
        ("claude-3-haiku-20240307", 2048),
        ("some-unknown-model", 1024),
    ],
)
def test_minimum_cacheable_length_per_model(model: str, minimum: int) -> None:
    assert min_cacheable_tokens(model) == minimum


def test_estimate_is_characters_over_four_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens(words(1024)) == 1024


def test_short_prompt_gets_no_breakpoint() -> None:
    plan = plan_cache_breakpoints(
        request(
            [Message.system("Be brief."), Message.user("hi")],
            tools=[ToolSpec(name="t")],
        )
    )
    assert plan == CachePlan()
    assert len(plan) == 0


def test_long_system_prompt_marks_the_last_system_block() -> None:
    plan = plan_cache_breakpoints(
        request(
            [
                Message.system("You are helpful."),
                Message(role="system", content=[TextPart(text=words(1100)), TextPart(text="")]),
                Message.user("hi"),
            ]
        )
    )
    # system_parts: 0 "You are helpful.", 1 the long text, 2 the empty part (never marked)
    assert plan == CachePlan(system=(1,))


def test_system_threshold_counts_the_tools_before_it() -> None:
    # Neither tools (600) nor system (600) alone reach 1024, together they do.
    plan = plan_cache_breakpoints(
        request(
            [Message.system(words(600)), Message.user("hi")],
            tools=[big_tool("a", 300), big_tool("b", 300)],
        )
    )
    assert plan == CachePlan(system=(0,))


def test_long_tools_mark_the_last_tool_and_the_system() -> None:
    plan = plan_cache_breakpoints(
        request(
            [Message.system("Be brief."), Message.user("hi")],
            tools=[big_tool("a", 700), big_tool("b", 700), ToolSpec(name="c")],
        )
    )
    assert plan == CachePlan(tools=(2,), system=(0,))


def test_minimum_depends_on_the_model() -> None:
    messages = [Message.system(words(1500)), Message.user("hi")]
    assert plan_cache_breakpoints(request(messages, model=SONNET)).system == (0,)
    assert plan_cache_breakpoints(request(messages, model="claude-3-5-haiku-latest")).system == ()
    messages = [Message.system(words(3000)), Message.user("hi")]
    assert plan_cache_breakpoints(request(messages, model="claude-3-haiku-20240307")).system == (0,)
    assert plan_cache_breakpoints(request(messages, model="claude-haiku-4-5")).system == ()
    messages = [Message.system(words(4100)), Message.user("hi")]
    assert plan_cache_breakpoints(request(messages, model="claude-haiku-4-5")).system == (0,)


def test_long_context_block_in_a_single_user_message() -> None:
    doc = TextPart(text=words(2000))
    plan = plan_cache_breakpoints(
        request([Message(role="user", content=[doc, TextPart(text="Summarize it.")])])
    )
    # One message is not a conversation in progress: no tail, only the long block.
    assert plan == CachePlan(messages=((0, 0),))


def test_conversation_tail_is_marked_when_the_prompt_is_long_enough() -> None:
    messages = [
        Message.system(words(1200)),
        Message.user("What is the weather in Paris?"),
        Message.assistant(tool_calls=[ToolCall(id="c1", name="w", arguments='{"city":"Paris"}')]),
        Message.tool("c1", "w", "18C, sunny"),
    ]
    plan = plan_cache_breakpoints(request(messages))
    assert plan == CachePlan(system=(0,), messages=((3, 0),))


def test_no_tail_below_the_minimum() -> None:
    messages = [Message.user("hi"), Message.assistant("hello"), Message.user("bye")]
    assert plan_cache_breakpoints(request(messages)) == CachePlan()


def test_tail_skips_reasoning_and_empty_parts() -> None:
    messages = [
        Message.user(words(1100)),
        Message(
            role="assistant",
            content=[
                TextPart(text="done"),
                ReasoningPart(text="hmm", signature="s"),
                TextPart(text=""),
            ],
        ),
    ]
    plan = plan_cache_breakpoints(request(messages))
    assert plan.messages == ((0, 0), (1, 0))


def test_assistant_with_only_tool_calls_has_no_tail() -> None:
    messages = [
        Message.user("x"),
        Message.assistant(tool_calls=[ToolCall(id="c", name="t", arguments=words(1100))]),
    ]
    assert plan_cache_breakpoints(request(messages)) == CachePlan()


def test_never_more_than_four_breakpoints_and_earliest_long_blocks_first() -> None:
    docs = [Message.user(words(1100)) for _ in range(6)]
    plan = plan_cache_breakpoints(
        request(
            [Message.system(words(1100)), *docs],
            tools=[big_tool("a", 1100)],
        )
    )
    assert len(plan) == MAX_BREAKPOINTS
    # tools, system, the tail (message 6), then the earliest long block (message 1)
    assert plan == CachePlan(tools=(0,), system=(0,), messages=((1, 0), (6, 0)))


def test_explicit_hints_take_precedence_and_count_toward_the_limit() -> None:
    messages = [
        Message.system("short rules", cache=True),
        Message.user("doc one", cache=True),
        Message(role="user", content=[ImagePart(url="https://x/y.png", cache=True)]),
        Message.assistant("ok"),
        Message.user(words(1100)),
    ]
    plan = plan_cache_breakpoints(request(messages, tools=[big_tool("a", 1100)]))
    # three explicit (system 0, (1,0), (2,0)); one slot left: the last tool wins it
    assert plan == CachePlan(tools=(0,), system=(0,), messages=((1, 0), (2, 0)))


def test_auto_position_already_hinted_takes_no_extra_slot() -> None:
    messages = [Message.system(words(1100), cache=True), Message.user("a"), Message.user("b")]
    plan = plan_cache_breakpoints(request(messages))
    # the system block once (hinted), then the tail in the slot it did not take
    assert plan == CachePlan(system=(0,), messages=((2, 0),))


def test_more_than_four_explicit_hints_is_refused() -> None:
    messages = [Message.user(f"part {i}", cache=True) for i in range(5)]
    with pytest.raises(RequestError, match="at most 4 cache breakpoints"):
        plan_cache_breakpoints(request(messages))


def test_auto_off_keeps_only_the_explicit_hints() -> None:
    messages = [Message.system(words(5000)), Message.user("hi", cache=True)]
    plan = plan_cache_breakpoints(request(messages, cache=CacheHint(auto=False)))
    assert plan == CachePlan(messages=((1, 0),))
    messages = [Message.system(words(5000)), Message.user("hi")]
    assert plan_cache_breakpoints(request(messages, cache=CacheHint(auto=False))) == CachePlan()


def test_images_count_toward_the_prefix_but_are_not_long_blocks() -> None:
    image = ImagePart(data="aGk=", media_type="image/png")
    messages = [Message(role="user", content=[image]), Message.assistant("a cat")]
    assert IMAGE_TOKENS >= 1024
    plan = plan_cache_breakpoints(request(messages))
    assert plan == CachePlan(messages=((1, 0),))  # the tail only, not the image itself


def test_system_parts_flatten_the_leading_system_messages() -> None:
    req = request(
        [
            Message.system("a"),
            Message(role="system", content=[TextPart(text="b"), TextPart(text="c")]),
            Message.user("u"),
            Message.system("late"),
        ]
    )
    assert [p.text for p in system_parts(req) if isinstance(p, TextPart)] == ["a", "b", "c"]


_part = st.one_of(
    st.builds(
        TextPart, text=st.sampled_from(["", "x", words(600), words(1500)]), cache=st.booleans()
    ),
    st.builds(ReasoningPart, text=st.just("r"), signature=st.just("s")),
    st.builds(ImagePart, url=st.just("https://e/i.png"), cache=st.booleans()),
)


@st.composite
def _requests(draw: st.DrawFn) -> Request:
    n_system = draw(st.integers(0, 2))
    messages: list[Message] = [
        Message(
            role="system",
            content=draw(  # type: ignore[arg-type]
                st.lists(
                    st.builds(
                        TextPart, text=st.sampled_from(["s", words(700)]), cache=st.booleans()
                    ),
                    max_size=2,
                )
            ),
        )
        for _ in range(n_system)
    ]
    for _ in range(draw(st.integers(1, 6))):
        role: Literal["user", "assistant"] = draw(st.sampled_from(["user", "assistant"]))
        parts: list[Part] = draw(st.lists(_part, max_size=3))
        if role == "user":
            parts = [p for p in parts if not isinstance(p, ReasoningPart)]
        messages.append(Message(role=role, content=parts))
    tools = [
        big_tool(f"t{i}", draw(st.sampled_from([1, 800]))) for i in range(draw(st.integers(0, 3)))
    ]
    model = draw(st.sampled_from([SONNET, "claude-haiku-4-5", "claude-3-haiku-20240307"]))
    return Request(model=model, messages=messages, tools=tools)


@settings(max_examples=300, deadline=None)
@given(_requests())
def test_plan_is_within_the_limit_and_points_at_markable_blocks(req: Request) -> None:
    explicit = sum(
        1
        for m in req.messages
        for p in m.parts()
        if isinstance(p, TextPart | ImagePart) and p.cache
    )
    if explicit > MAX_BREAKPOINTS:
        with pytest.raises(RequestError):
            plan_cache_breakpoints(req)
        return
    plan = plan_cache_breakpoints(req)
    assert len(plan) <= MAX_BREAKPOINTS
    assert len(set(plan.messages)) == len(plan.messages)
    assert all(0 <= t < len(req.tools) for t in plan.tools)
    sys_parts = system_parts(req)
    assert all(isinstance(sys_parts[j], TextPart) for j in plan.system)
    for i, j in plan.messages:
        part = req.messages[i].parts()[j]
        assert not isinstance(part, ReasoningPart)
    # every explicit hint is in the plan
    for i, m in enumerate(req.messages):
        if m.role == "system":
            continue
        for j, p in enumerate(m.parts()):
            if isinstance(p, TextPart | ImagePart) and p.cache:
                assert (i, j) in plan.messages
