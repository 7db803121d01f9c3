"""The demonstration swarm ``swarm run`` runs without a spec.

A research desk on the embedded simulator, one stage per wire family: researchers
(OpenAI Chat Completions) look topics up and count words with tools, reviewers
(Anthropic Messages) check claims with a tool, editors (Gemini) write the final
paragraph. The simulator paces tokens, calls tools for two rounds before it
answers, and enforces a per-key rate limit that the providers learn from its
headers, so the display has real traffic to show: queues, streams in flight,
tool calls, rate-limit buckets and breakers.

``swarm run --print-demo`` prints it as a spec file to start your own from.
"""

from __future__ import annotations

from providers.sim import ModelProfile, RateLimit, SimConfig

from .spec import AgentSpec, InputsSpec, PipelinePattern, StageSpec, SwarmSpec

__all__ = ["DEMO_AGENTS", "DEMO_INPUTS", "demo_spec"]

DEMO_AGENTS = 200
DEMO_INPUTS = 400

_TOPICS = [
    "tea", "suspension bridges", "the blue sky", "maps", "honeybees", "tides",
    "the printing press", "purring cats", "vaccines", "bicycles", "volcanoes",
    "coral reefs", "glaciers", "sourdough", "lighthouses", "comets",
]  # fmt: skip
_ANGLES = [
    "how it works", "its history", "a common misconception about it",
    "what changed in the last century", "why it matters to a city",
]  # fmt: skip


def _split(agents: int) -> tuple[int, int, int]:
    """Researchers, reviewers, editors for ``agents`` in all (6 : 3 : 1)."""
    if agents < 3:
        raise ValueError(f"the demo needs at least 3 agents (one per stage), got {agents}")
    editors = max(1, agents // 10)
    reviewers = max(1, (agents * 3) // 10)
    return agents - reviewers - editors, reviewers, editors


def demo_spec(agents: int = DEMO_AGENTS, inputs: int = DEMO_INPUTS) -> SwarmSpec:
    """The demo with ``agents`` agents over ``inputs`` questions."""
    if inputs < 1:
        raise ValueError(f"the demo needs at least 1 input, got {inputs}")
    researchers, reviewers, editors = _split(agents)
    questions = [
        f"Explain {_ANGLES[(i // len(_TOPICS)) % len(_ANGLES)]} for {_TOPICS[i % len(_TOPICS)]}"
        f" (brief #{i + 1})."
        for i in range(inputs)
    ]
    profile = ModelProfile(
        ttft=0.05,
        ttft_max=0.25,
        tokens_per_second=150,
        output_tokens=24,
        output_tokens_max=64,
        tool_rounds=2,
        cache_min_tokens=64,
    )
    return SwarmSpec(
        name="demo",
        description="a research desk: researchers -> reviewers -> editors, one stage per family",
        agents=[
            AgentSpec(
                name="researcher",
                instructions=(
                    "You research one question. Look the topic up, count the words of "
                    "your draft, then answer with three short facts."
                ),
                model="sim/gpt-4o-mini",
                tools=["lookup", "word_count"],
                replicas=researchers,
                max_tokens=96,
                max_turns=6,
                concurrency=2,
            ),
            AgentSpec(
                name="reviewer",
                instructions=(
                    "You review a researcher's facts. Check each claim, then list the "
                    "ones that hold up."
                ),
                model="sim-anthropic/claude-haiku-4-5",
                tools=["check_claim"],
                replicas=reviewers,
                max_tokens=96,
                max_turns=6,
                concurrency=2,
            ),
            AgentSpec(
                name="editor",
                instructions="You turn reviewed facts into one clear paragraph for readers.",
                model="sim-gemini/gemini-2.0-flash",
                replicas=editors,
                max_tokens=128,
                concurrency=4,
            ),
        ],
        pattern=PipelinePattern(
            stages=[
                StageSpec(agent="researcher", workers=researchers * 2),
                StageSpec(
                    agent="reviewer",
                    workers=reviewers * 2,
                    template="Review these facts:\n{input}",
                ),
                StageSpec(agent="editor", workers=editors * 4, template="Write it up:\n{input}"),
            ],
            buffer=32,
        ),
        inputs=InputsSpec(items=questions),
        concurrency=researchers * 2,
        simulator=SimConfig(
            seed=7,
            default_profile=profile,
            rate_limit=RateLimit(rpm=30_000, tpm=6_000_000),
        ),
    )
