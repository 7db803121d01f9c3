"""Swarm specs: a TOML file that describes a swarm run.

::

    name = "triage"
    concurrency = 32            # inputs in flight at once
    timeout = 120               # seconds each message may take (optional)

    [inputs]
    items = ["The login page is slow", "Export to CSV fails"]   # and/or
    file = "tickets.txt"        # one input per line (.jsonl: a string per line)

    [pattern]
    kind = "pipeline"           # map | pipeline | consensus
    stages = [{ agent = "classifier", workers = 16 }, { agent = "writer" }]

    [[agents]]
    name = "classifier"
    instructions = "Classify the ticket."
    model = "gpt-4o-mini"       # a route: provider/model, a model, or an alias below
    tools = ["lookup", "mytools:search"]   # built-in tools, or module:attribute
    replicas = 20               # 20 identical agents: classifier-01 ... classifier-20

    [budget]                    # tokens, cost_usd, seconds
    tokens = 2_000_000

    [routes.smart]              # route aliases, as in the engine config
    targets = ["sim-anthropic/claude-haiku-4-5", "sim/gpt-4o-mini"]

    [engine]                    # any engine setting (swarm.EngineConfig)
    [simulator]                 # the embedded simulator (providers.sim.SimConfig)

A name in a pattern that has ``replicas`` stands for all of them (a pool: input
``i`` goes to replica ``i % n``; consensus asks every replica). Relative paths
(``inputs.file``) and tool modules are found beside the spec file.

Every check runs before anything starts; a :class:`SpecError` names the setting
and the fix.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import msgspec

from providers.sim import SimConfig

from ..agents.agent import DEFAULT_ASK_TIMEOUT, Agent
from ..agents.budget import Budget
from ..config import ConfigError, EngineConfig, RouteConfig
from ..execution.tools import ToolBox
from .tools import BUILTIN_TOOLS

__all__ = [
    "AgentSpec",
    "ConsensusPattern",
    "InputsSpec",
    "MapPattern",
    "PipelinePattern",
    "SpecError",
    "StageSpec",
    "SwarmSpec",
    "build_agents",
    "load_inputs",
    "load_spec",
    "pools",
]


class SpecError(ConfigError):
    """The spec cannot run as written; the message names the setting and the fix."""


class AgentSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One agent (or ``replicas`` identical ones); the settings of
    :class:`swarm.agents.Agent`, with tools named by string."""

    name: str
    instructions: str = ""
    model: str = "gpt-4o-mini"
    tools: list[str] = []
    replicas: int = 1
    max_tokens: int | None = None
    temperature: float | None = None
    max_turns: int = 10
    concurrency: int = 1
    mailbox: int = 64
    memory: bool = False
    memory_tokens: int | None = None
    memory_policy: Literal["trim", "summarize"] = "trim"
    ask_timeout: float | None = DEFAULT_ASK_TIMEOUT
    on_error: Literal["reply", "restart", "escalate"] = "reply"
    cache: bool = True
    priority: int = 0
    description: str = ""
    can_ask: list[str] = []
    handoffs: list[str] = []


class StageSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A pipeline stage: its agent (or pool), messages at once, and the template
    that makes the previous answer (``{input}``) its message."""

    agent: str
    workers: int = 16
    template: str = "{input}"


class MapPattern(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="map",
):
    """Each input to ``agent`` (or its pool), ``concurrency`` at once."""

    agent: str
    template: str = "{input}"


class PipelinePattern(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="pipeline",
):
    """Each input through the stages in order, bounded queues between them."""

    stages: list[StageSpec]
    buffer: int = 16


class ConsensusPattern(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="consensus",
):
    """Each input asked of every agent in ``agents`` (pools: every replica), then
    a vote on the normalized answers or a ``judge`` agent's decision."""

    agents: list[str]
    method: Literal["vote", "judge"] = "vote"
    judge: str | None = None
    quorum: int = 1
    template: str = "{input}"


Pattern = MapPattern | PipelinePattern | ConsensusPattern


class InputsSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The inputs: ``items`` then the lines of ``file``, all of it ``repeat`` times."""

    items: list[str] = []
    file: str | None = None
    repeat: int = 1


class SwarmSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A whole swarm run (see the module docstring)."""

    agents: list[AgentSpec]
    pattern: Pattern = msgspec.field(
        default_factory=lambda: MapPattern(agent="")  # checked: must name an agent
    )
    inputs: InputsSpec = InputsSpec()
    name: str = "swarm"
    description: str = ""
    concurrency: int = 64
    timeout: float | None = None
    budget: Budget = Budget()
    routes: dict[str, RouteConfig] = {}
    engine: EngineConfig = EngineConfig()
    simulator: SimConfig = msgspec.field(default_factory=SimConfig)


def _decode_error(source: str, exc: Exception) -> SpecError:
    text = str(exc)
    if "Expected `object`, got `null`" in text or "missing required field `agents`" in text:
        return SpecError(
            f"{source}: the spec has no agents; add at least one [[agents]] table with a name"
        )
    if "missing required field `kind`" in text:
        return SpecError(f"{source}: {text}; set pattern.kind to 'map', 'pipeline' or 'consensus'")
    return SpecError(f"{source}: {text}")


def load_spec(path: str | Path) -> SwarmSpec:
    """Read and check a spec file.

    Raises:
        SpecError: unreadable, not TOML, an unknown or invalid setting, or a
            reference (agent, tool module) that does not resolve.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from exc
    return parse_spec(data, source=f"spec {path}", base=Path(path).resolve().parent)


def parse_spec(data: bytes | str, *, source: str = "spec", base: Path | None = None) -> SwarmSpec:
    """Decode and check a spec from TOML text (``base``: where its paths start)."""
    try:
        spec = msgspec.toml.decode(data, type=SwarmSpec)
    except msgspec.ValidationError as exc:
        raise _decode_error(source, exc) from exc
    except msgspec.DecodeError as exc:
        raise SpecError(f"{source} is not valid TOML: {exc}") from exc
    except (ValueError, TypeError) as exc:  # a __post_init__ check (Budget, Agent settings...)
        raise SpecError(f"{source}: {exc}") from exc
    check(spec, source, base or Path.cwd())
    return spec


def replica_names(agent: AgentSpec) -> list[str]:
    """The agents an AgentSpec stands for: itself, or ``name-01`` ... ``name-NN``."""
    if agent.replicas == 1:
        return [agent.name]
    width = len(str(agent.replicas))
    return [f"{agent.name}-{k:0{width}d}" for k in range(1, agent.replicas + 1)]


def pools(spec: SwarmSpec) -> dict[str, list[str]]:
    """Each spec agent's name -> the names of the agents it runs as."""
    return {agent.name: replica_names(agent) for agent in spec.agents}


def _check_template(template: str, where: str, source: str) -> None:
    try:
        template.format(input="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise SpecError(
            f"{source}: {where} template {template!r} is not usable ({exc!r}); it may use "
            "{input} (the input or the previous answer) and doubled braces {{ }} for literal ones"
        ) from None


def check(spec: SwarmSpec, source: str, base: Path) -> None:
    """Every cross-reference and domain check of a decoded spec."""
    names = [a.name for a in spec.agents]
    if not names:
        raise SpecError(f"{source}: the spec has no agents; add an [[agents]] table with a name")
    for a in spec.agents:  # each agent's own settings, before anything refers to them
        try:
            Agent(
                a.name,
                model=a.model,
                max_turns=a.max_turns,
                mailbox=a.mailbox,
                concurrency=a.concurrency,
                memory=a.memory,
                memory_tokens=a.memory_tokens,
                memory_policy=a.memory_policy,
                ask_timeout=a.ask_timeout,
            )
        except ValueError as exc:
            raise SpecError(f"{source}: {exc}") from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"{source}: agent names must be unique; repeated: {', '.join(repeated)}")
    if spec.concurrency < 1:
        raise SpecError(f"{source}: concurrency must be at least 1, got {spec.concurrency}")
    if spec.timeout is not None and spec.timeout <= 0:
        raise SpecError(f"{source}: timeout must be a positive number of seconds (or left out)")
    if spec.inputs.repeat < 1:
        raise SpecError(f"{source}: inputs.repeat must be at least 1, got {spec.inputs.repeat}")
    if not spec.inputs.items and spec.inputs.file is None:
        raise SpecError(
            f"{source}: the spec has no inputs; give inputs.items (a list of strings) "
            "or inputs.file (one input per line)"
        )
    known = ", ".join(names)
    replicated = {a.name for a in spec.agents if a.replicas > 1}

    def agent_ref(name: str, where: str) -> None:
        if name not in names:
            raise SpecError(
                f"{source}: {where} names {name!r}, which is not an agent of the spec "
                f"(agents: {known})"
            )

    for a in spec.agents:
        if a.replicas < 1:
            raise SpecError(f"{source}: agent {a.name!r}: replicas must be at least 1")
        for field in ("can_ask", "handoffs"):
            for peer in getattr(a, field):
                agent_ref(peer, f"agent {a.name!r} {field}")
                if peer in replicated:
                    raise SpecError(
                        f"{source}: agent {a.name!r} {field} names {peer!r}, which has "
                        "replicas; a peer must be one agent (give it replicas = 1)"
                    )
    pattern = spec.pattern
    if isinstance(pattern, MapPattern):
        if not pattern.agent:
            raise SpecError(
                f"{source}: the spec has no pattern; add [pattern] with kind = 'map' and "
                f"agent = one of: {known}"
            )
        agent_ref(pattern.agent, "pattern.agent")
        _check_template(pattern.template, "pattern", source)
    elif isinstance(pattern, PipelinePattern):
        if not pattern.stages:
            raise SpecError(f"{source}: pattern.stages is empty; list the stages in order")
        if pattern.buffer < 1:
            raise SpecError(f"{source}: pattern.buffer must be at least 1")
        for k, stage in enumerate(pattern.stages):
            agent_ref(stage.agent, f"pattern.stages[{k}].agent")
            if stage.workers < 1:
                raise SpecError(f"{source}: pattern.stages[{k}].workers must be at least 1")
            _check_template(stage.template, f"pattern.stages[{k}]", source)
    else:
        if not pattern.agents:
            raise SpecError(f"{source}: pattern.agents is empty; list the voting agents")
        for name in pattern.agents:
            agent_ref(name, "pattern.agents")
        if pattern.method == "judge":
            if pattern.judge is None:
                raise SpecError(f"{source}: pattern.method 'judge' needs pattern.judge (an agent)")
            agent_ref(pattern.judge, "pattern.judge")
            if pattern.judge in replicated:
                raise SpecError(f"{source}: the judge {pattern.judge!r} must have replicas = 1")
        voters = sum(len(replica_names(a)) for a in spec.agents if a.name in pattern.agents)
        if not 1 <= pattern.quorum <= voters:
            raise SpecError(
                f"{source}: pattern.quorum must be between 1 and the {voters} voters, "
                f"got {pattern.quorum}"
            )
        _check_template(pattern.template, "pattern", source)
    if spec.inputs.file is not None and not (base / spec.inputs.file).is_file():
        raise SpecError(
            f"{source}: inputs.file {spec.inputs.file!r} is not a file (paths are relative "
            f"to the spec: {base})"
        )
    for a in spec.agents:
        toolbox(a, base, source)  # every tool resolves before anything starts


@contextmanager
def _importable_from(base: Path) -> Iterator[None]:
    """Modules beside the spec import first (as a script's neighbours do)."""
    entry = str(base)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:  # the tool module removed it itself
            pass


def resolve_tool(ref: str, base: Path) -> list[Any]:
    """A tool reference -> the functions, Structs or Tools it names.

    ``name`` is a built-in tool (``swarm.run.tools``); ``module:attribute`` imports
    ``module`` (from beside the spec first) and takes ``attribute``: a function, a
    Struct type, a Tool, or a list of them.

    Raises:
        LookupError: the reference does not resolve; the message says why.
    """
    if ":" not in ref:
        tool = BUILTIN_TOOLS.get(ref)
        if tool is None:
            raise LookupError(
                f"no built-in tool {ref!r} (built-in: {', '.join(sorted(BUILTIN_TOOLS))}); "
                "write module:function for your own"
            )
        return [tool]
    module_name, _, attribute = ref.partition(":")
    if not module_name or not attribute:
        raise LookupError(f"tool {ref!r} must be module:attribute, e.g. mytools:search")
    with _importable_from(base):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise LookupError(
                f"tool {ref!r}: cannot import module {module_name!r} ({exc}); put "
                f"{module_name}.py beside the spec or install it"
            ) from None
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise LookupError(f"tool {ref!r}: module {module_name!r} has no {attribute!r}") from None
    if isinstance(value, list | tuple):
        return list(value)
    if not callable(value):
        raise LookupError(f"tool {ref!r} is {value!r}, not a function, Struct or Tool")
    return [value]


def toolbox(agent: AgentSpec, base: Path, source: str) -> ToolBox:
    """The ToolBox every replica of ``agent`` shares."""
    found: list[Any] = []
    for ref in agent.tools:
        try:
            found.extend(resolve_tool(ref, base))
        except LookupError as exc:
            raise SpecError(f"{source}: agent {agent.name!r}: {exc.args[0]}") from None
    try:
        return ToolBox(found)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{source}: agent {agent.name!r} tools: {exc}") from None


def build_agents(spec: SwarmSpec, base: Path, source: str = "spec") -> list[Agent]:
    """The agents a spec runs (replicas expanded), their tools resolved."""
    out: list[Agent] = []
    for a in spec.agents:
        tools = toolbox(a, base, source)
        for name in replica_names(a):
            out.append(
                Agent(
                    name,
                    a.instructions,
                    tools=tools,
                    model=a.model,
                    max_tokens=a.max_tokens,
                    temperature=a.temperature,
                    max_turns=a.max_turns,
                    mailbox=a.mailbox,
                    concurrency=a.concurrency,
                    memory=a.memory,
                    memory_tokens=a.memory_tokens,
                    memory_policy=a.memory_policy,
                    ask_timeout=a.ask_timeout,
                    on_error=a.on_error,
                    cache=a.cache,
                    priority=a.priority,
                    description=a.description,
                    can_ask=a.can_ask,
                    handoffs=a.handoffs,
                )
            )
    return out


def load_inputs(spec: SwarmSpec, base: Path) -> list[str]:
    """The inputs, in order: ``items``, then the file's non-blank lines (a .jsonl
    line is a JSON string, or an object with a "text" or "input" field)."""
    values = list(spec.inputs.items)
    if spec.inputs.file is not None:
        path = base / spec.inputs.file
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read inputs.file {path}: {exc}") from exc
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if path.suffix == ".jsonl":
                values.append(_jsonl_input(line, path, number))
            else:
                values.append(line)
    if not values:
        raise SpecError("the spec's inputs are empty (inputs.items and inputs.file hold none)")
    return values * spec.inputs.repeat


def _jsonl_input(line: str, path: Path, number: int) -> str:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise SpecError(f"{path}:{number} is not JSON ({exc})") from None
    if isinstance(value, dict):
        value = value.get("text", value.get("input"))
    if not isinstance(value, str):
        raise SpecError(
            f'{path}:{number}: each line must be a JSON string or an object with "text"'
        )
    return value
