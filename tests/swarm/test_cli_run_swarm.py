"""``swarm run`` running swarms: the built-in demo, spec files (each pattern, tools,
replicas, budget, failures), the live display, and the errors a bad spec or bad
flags get. Everything runs on the embedded simulator (a real loopback server)."""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import msgspec
import pytest

from swarm.cli import EXIT_INPUT, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, main
from swarm.provider_actor import ProviderStatistics
from swarm.run import SwarmRunReport, demo_spec, load_spec, parse_spec, run_spec
from swarm.run.display import _breaker
from swarm.run.spec import build_agents

# A fast simulator for spec tests: no pacing, short answers.
FAST_SIM = """
[simulator.default_profile]
output_tokens = 8
"""


def run_json(args: list[str], tmp_path: Path) -> tuple[int, SwarmRunReport | None]:
    out = tmp_path / "report.json"
    code = main(["run", *args, "--quiet", "--json", str(out)])
    report = msgspec.json.decode(out.read_bytes(), type=SwarmRunReport) if out.exists() else None
    return code, report


def write_spec(tmp_path: Path, text: str, name: str = "swarm.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the demo -----------------------------------------------------------------------------


def test_the_demo_runs_a_tool_using_swarm_over_three_families(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(["--agents", "6", "--inputs", "8"], tmp_path)
    printed = capsys.readouterr().out
    assert code == EXIT_OK and report is not None
    assert (report.spec, report.pattern, report.agents) == ("demo", "pipeline", 6)
    assert report.inputs == report.answered == len(report.outcomes) == 8
    # Each input went researcher -> reviewer -> editor, one agent of each pool.
    for outcome in report.outcomes:
        assert outcome.ok and outcome.text
        assert [name.rsplit("-", 1)[0] for name in outcome.agents] == [
            "researcher", "reviewer", "editor",
        ]  # fmt: skip
    agents = report.swarm.agents
    assert len(agents) == 6
    # Tools ran: the simulator calls them for two rounds before answering.
    researchers = [a for n, a in agents.items() if n.startswith("researcher")]
    assert sum(a.tool_calls for a in researchers) >= 2 * 8
    assert sum(a.turns for a in researchers) == 3 * 8
    # Every model call is in the ledger, on the provider of its family.
    assert report.summary.calls == len(report.calls) == sum(a.turns for a in agents.values())
    assert report.summary.completed == report.summary.calls
    families = {name: p.family for name, p in report.providers.items() if p.completed}
    assert families == {"sim": "openai", "sim-anthropic": "anthropic", "sim-gemini": "gemini"}
    assert all(set(p.breakers.values()) <= {"closed"} for p in report.providers.values())
    # The simulator's rate limit was learned from its headers.
    assert report.rate_limits["sim"]["gpt-4o-mini"].requests_ceiling == 30_000
    assert "8 (8 answered, 0 failed)" in printed
    assert "provider" in printed and "sim-anthropic" in printed and "breaker" in printed


def test_the_printed_demo_is_a_spec_that_runs_the_same_swarm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--agents", "5", "--inputs", "3", "--print-demo"]) == EXIT_OK
    text = capsys.readouterr().out
    assert text.startswith("# The demo swarm")
    assert parse_spec(text) == demo_spec(5, 3)
    code, report = run_json([str(write_spec(tmp_path, text))], tmp_path)
    assert code == EXIT_OK and report is not None
    assert (report.agents, report.answered) == (5, 3)


# -- specs: patterns, tools, replicas ----------------------------------------------------


def test_a_map_spec_spreads_over_replicas_and_runs_tools_from_beside_the_spec(
    tmp_path: Path,
) -> None:
    module = f"spec_tools_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        "CALLS = []\n\n"
        "async def shout(text: str) -> str:\n"
        '    """Shout a text."""\n'
        "    CALLS.append(text)\n"
        "    return text.upper()\n"
    )
    (tmp_path / "inputs.jsonl").write_text('"from a file"\n\n{"text": "an object"}\n')
    spec = write_spec(
        tmp_path,
        f"""
name = "shouting"
concurrency = 3
[inputs]
items = ["one", "two", "three", "four"]
file = "inputs.jsonl"
[pattern]
kind = "map"
agent = "shouter"
template = "Shout this: {{input}}"
[[agents]]
name = "shouter"
instructions = "Use the tool."
tools = ["{module}:shout", "word_count"]
replicas = 3
"""
        + FAST_SIM,
    )
    code, report = run_json([str(spec)], tmp_path)
    assert code == EXIT_OK and report is not None
    assert [o.input for o in report.outcomes] == [
        "one", "two", "three", "four", "from a file", "an object",
    ]  # fmt: skip
    assert [o.agents for o in report.outcomes] == [[f"shouter-{i % 3 + 1}"] for i in range(6)]
    assert [report.swarm.agents[f"shouter-{k}"].replies for k in (1, 2, 3)] == [2, 2, 2]
    assert sum(a.tool_calls for a in report.swarm.agents.values()) >= 6
    assert sys.modules[module].CALLS  # our function ran, with what the model sent


def test_a_consensus_spec_asks_every_replica_and_reports_the_vote(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        """
[inputs]
items = ["Is water wet?", "Is fire hot?"]
[pattern]
kind = "consensus"
agents = ["voter"]
quorum = 2
[[agents]]
name = "voter"
instructions = "Answer yes or no."
replicas = 3
"""
        + FAST_SIM,
    )
    code, report = run_json([str(spec)], tmp_path)
    assert code == EXIT_OK and report is not None
    for outcome in report.outcomes:
        assert outcome.agents == ["voter-1", "voter-2", "voter-3"]
        assert sum(outcome.detail["votes"].values()) == 3
        assert outcome.text
    assert report.summary.calls == 6


def test_a_judged_consensus_uses_the_judge(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        """
[inputs]
items = ["Pick a colour"]
[pattern]
kind = "consensus"
agents = ["a", "b"]
method = "judge"
judge = "judge"
[[agents]]
name = "a"
[[agents]]
name = "b"
model = "sim-anthropic/claude-haiku-4-5"
[[agents]]
name = "judge"
instructions = "Pick the best answer."
"""
        + FAST_SIM,
    )
    code, report = run_json([str(spec)], tmp_path)
    assert code == EXIT_OK and report is not None
    assert report.swarm.agents["judge"].replies == 1
    assert report.summary.calls == 3


def test_routes_in_a_spec_are_aliases_for_its_agents(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        """
[routes.careful]
targets = ["sim-anthropic/claude-haiku-4-5", "sim/gpt-4o-mini"]
[inputs]
items = ["hello"]
[pattern]
kind = "map"
agent = "a"
[[agents]]
name = "a"
model = "careful"
"""
        + FAST_SIM,
    )
    code, report = run_json([str(spec)], tmp_path)
    assert code == EXIT_OK and report is not None
    assert [c.deployment for c in report.calls] == ["sim-anthropic/claude-haiku-4-5"]


def test_a_budget_stops_the_run_and_every_input_still_gets_an_outcome(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        """
concurrency = 1
[budget]
tokens = 60
[inputs]
items = ["a", "b", "c", "d", "e", "f"]
[pattern]
kind = "map"
agent = "a"
[[agents]]
name = "a"
"""
        + FAST_SIM,
    )
    code, report = run_json([str(spec)], tmp_path)
    assert code == EXIT_PROBLEM and report is not None
    assert report.swarm.stopped == "budget"
    assert len(report.outcomes) == report.inputs == 6
    assert report.failed >= 1 and report.answered + report.failed == 6
    failed = [o for o in report.outcomes if not o.ok]
    assert any("BudgetExhausted" in (o.error or "") for o in failed)


def test_a_failing_stage_fails_its_inputs_with_the_error_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        tmp_path,
        """
[inputs]
items = ["a", "b"]
[pattern]
kind = "pipeline"
stages = [{ agent = "first" }, { agent = "second", template = "Go on: {input}" }]
[[agents]]
name = "first"
[[agents]]
name = "second"
model = "sim/broken"
[[simulator.faults]]
kind = "status"
status = 400
models = ["broken"]
"""
        + FAST_SIM,
    )
    code, report = run_json([str(spec)], tmp_path)
    assert code == EXIT_PROBLEM and report is not None
    assert report.answered == 0 and report.failed == 2
    for outcome in report.outcomes:
        assert outcome.detail == {"stage": 1}
        assert outcome.agents == ["first"]  # what it got through
        assert "AgentError" in (outcome.error or "")
    assert "failed:" in capsys.readouterr().out


def test_a_spec_runs_on_asyncio_too(tmp_path: Path) -> None:
    spec_path = write_spec(
        tmp_path,
        """
[inputs]
items = ["x", "y"]
[pattern]
kind = "map"
agent = "a"
[[agents]]
name = "a"
tools = ["calculate"]
"""
        + FAST_SIM,
    )
    spec = load_spec(spec_path)
    report = anyio.run(lambda: run_spec(spec, base=tmp_path), backend="asyncio")
    assert report.answered == 2 and report.swarm.agents["a"].tool_calls >= 2


# -- the live display --------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_display_redraws_in_place_on_a_terminal_and_clears_at_the_end() -> None:
    out = FakeTerminal()
    report = anyio.run(
        lambda: run_spec(demo_spec(4, 6), base=Path.cwd(), progress_out=out), backend="trio"
    )
    text = out.getvalue()
    assert report.answered == 6
    frames = text.split("\x1b[J")
    assert len(frames) >= 3  # several redraws of the block
    frame = frames[-2]
    assert "swarm run: demo" in frame and "in flight" in frame and "tok/s" in frame
    assert "breaker" in frame and "rate limit" in frame and "errors  none" in frame
    assert text.endswith("\x1b[J")  # the block is cleared; the summary follows on stdout


def test_the_display_is_one_line_per_update_in_a_log() -> None:
    out = io.StringIO()
    spec = demo_spec(3, 3)
    anyio.run(lambda: run_spec(spec, base=Path.cwd(), progress_out=out), backend="trio")
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("[") and "inputs" in line for line in lines)
    assert "\x1b" not in out.getvalue()


def test_breaker_states_are_shown_per_model() -> None:
    def stats(breakers: dict[str, str]) -> ProviderStatistics:
        return ProviderStatistics(
            name="p", family="openai", max_concurrency=1, running=0, connecting=0,
            attempts=1, retries=0, completed=1, failed=0, ttft={}, breakers=breakers,
        )  # fmt: skip

    assert _breaker(stats({})) == "-"
    assert _breaker(stats({"a": "closed", "b": "closed"})) == "closed"
    assert _breaker(stats({"a": "closed", "b": "open", "c": "half_open"})) == (
        "b open, c half-open"
    )


# -- bad specs and bad flags -------------------------------------------------------------

GOOD_TAIL = """
[inputs]
items = ["x"]
[pattern]
kind = "map"
agent = "a"
[[agents]]
name = "a"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[inputs]\nitems = ["x"]\n', "the spec has no agents"),
        (GOOD_TAIL + 'modle = "x"\n', "modle"),
        (GOOD_TAIL.replace('agent = "a"', 'agent = "b"'), "pattern.agent names 'b'"),
        (GOOD_TAIL.replace('kind = "map"', 'kind = "mapp"'), "mapp"),
        (GOOD_TAIL + 'tools = ["serch"]\n', "no built-in tool 'serch'"),
        (GOOD_TAIL + 'tools = ["no_such_module_x:f"]\n', "cannot import module"),
        (GOOD_TAIL + 'tools = ["json:nope"]\n', "has no 'nope'"),
        (GOOD_TAIL + "replicas = 0\n", "replicas must be at least 1"),
        (GOOD_TAIL + "max_turns = 0\n", "max_turns must be an int >= 1"),
        (GOOD_TAIL + 'memory_policy = "summarize"\n', "needs memory=True and memory_tokens="),
        (GOOD_TAIL + "ask_timeout = -1\n", "ask_timeout must be a positive number"),
        (GOOD_TAIL.replace('name = "a"', 'name = "a b"'), "letters, digits"),
        (GOOD_TAIL.replace('items = ["x"]', "items = []"), "the spec has no inputs"),
        (GOOD_TAIL.replace('items = ["x"]', 'file = "nope.txt"'), "is not a file"),
        (GOOD_TAIL.replace('agent = "a"', 'agent = "a"\ntemplate = "{what}"'), "template"),
        ("[budget]\ntokens = 0\n" + GOOD_TAIL, "Budget.tokens must be at least 1"),
        (
            GOOD_TAIL.replace(
                'kind = "map"\nagent = "a"', 'kind = "consensus"\nagents = ["a"]\nmethod = "judge"'
            ),
            "needs pattern.judge",
        ),
        (GOOD_TAIL + '\n[[agents]]\nname = "a"\n', "repeated: a"),
        ("agents = [", "is not valid TOML"),
    ],
)
def test_a_bad_spec_exits_3_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    spec = write_spec(tmp_path, text)
    assert main(["run", str(spec), "--quiet"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert message in err, err
    assert str(spec) in err  # which file


def test_a_missing_spec_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "/no/such/swarm.toml"]) == EXIT_INPUT
    assert "cannot read spec /no/such/swarm.toml" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "2"], "--agents must be at least 3"),
        (["--inputs", "0"], "--inputs must be at least 1"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["SPEC", "--agents", "5"], "--agents is for the demo"),
        (["SPEC", "--calls", "5"], "--calls is for the demo"),
        (["--calls", "5", "--inputs", "3"], "--inputs is for the demo swarm"),
        (["--model", "x"], "--model is for plain calls"),
        (["--config", "engine.toml"], "the demo runs on the built-in simulator"),
        (["--metrics-tails"], "give --metrics-port too"),
        (["--dashboard", "--dashboard-ws-port", "70000"], "--dashboard-ws-port must be 0-65535"),
        (
            ["--dashboard", "--dashboard-port", "9000", "--dashboard-ws-port", "9000"],
            "--dashboard-port and --dashboard-ws-port must differ",
        ),
        (
            ["--metrics-port", "0", "--metrics-tails", "--metrics-host", "0.0.0.0"],
            "on loopback only",
        ),
    ],
)
def test_flags_that_do_not_go_together_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    spec = write_spec(tmp_path, GOOD_TAIL)
    args = [str(spec) if a == "SPEC" else a for a in args]
    assert main(["run", *args]) == EXIT_USAGE
    assert message in capsys.readouterr().err


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("flag", ["--metrics-port", "--dashboard-port", "--dashboard-ws-port"])
def test_a_port_in_use_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], busy_port: int, flag: str
) -> None:
    extra = ["--dashboard"] if flag.startswith("--dashboard") else []
    assert main(["run", "--quiet", *extra, flag, str(busy_port)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert f"{flag} {busy_port}: 127.0.0.1:{busy_port} is in use" in captured.err
    assert "0 for any free one" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""  # refused before anything ran


def test_swarm_dash_refuses_a_port_in_use(
    capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    url = "http://127.0.0.1:1/metrics"  # never scraped: the port is checked first
    assert main(["dash", url, "--port", str(busy_port)]) == EXIT_USAGE
    assert f"--port {busy_port}: 127.0.0.1:{busy_port} is in use" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/no/such/dir/report.json", "--json /no/such/dir/report.json: the directory"),
        ("DIR", "is a directory; give a file name"),
    ],
)
def test_a_report_that_could_not_be_written_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, message: str
) -> None:
    target = str(tmp_path) if path == "DIR" else path
    assert main(["run", "--quiet", "--json", target]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_a_spec_sets_an_agents_memory_policy_and_ask_timeout(tmp_path: Path) -> None:
    text = GOOD_TAIL + (
        'memory = true\nmemory_tokens = 2000\nmemory_policy = "summarize"\nask_timeout = 30\n'
    )
    spec = parse_spec(text)
    (agent,) = build_agents(spec, tmp_path)
    assert agent.memory_policy == "summarize" and agent.memory_tokens == 2000
    assert agent.ask_timeout == 30
