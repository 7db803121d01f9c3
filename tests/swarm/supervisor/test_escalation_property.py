"""The supervisor's restart accounting end to end, as a property on trio's virtual clock.

Random crash times of one child: the supervisor escalates exactly at the first crash that
makes ``intensity + 1`` crashes fit in a closed window of ``period`` seconds, and restarts
the child after every crash before that. Each example runs its own ``trio.run`` with an
autojumping ``MockClock``, so times are exact (multiples of 0.25 s).
"""

from __future__ import annotations

import itertools

import anyio
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.supervisor import SupervisorEscalation, SupervisorSpec, open_supervisor

from .children import Exits, Worker

_quarters = st.integers(min_value=0, max_value=24).map(lambda k: k * 0.25)  # exact floats


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(_quarters, min_size=1, max_size=8),
    intensity=st.integers(min_value=0, max_value=3),
    period=st.integers(min_value=1, max_value=16).map(lambda k: k * 0.25),
)
def test_a_supervisor_escalates_iff_more_than_intensity_crashes_fit_in_a_period(
    gaps: list[float], intensity: int, period: float
) -> None:
    crash_times = list(itertools.accumulate(gaps))
    expected = next(
        (
            j
            for j in range(len(crash_times))
            if j >= intensity and crash_times[j] - crash_times[j - intensity] <= period
        ),
        None,
    )

    async def scenario() -> tuple[bool, int, list[float]]:
        log: list[str] = []
        worker = Worker(log, "w")
        exits = Exits()
        spec = SupervisorSpec(intensity=intensity, period=period, children=[worker.spec()])
        escalated = False
        t0 = anyio.current_time()
        try:
            async with open_supervisor(spec, on_child_exit=exits):
                for index, gap in enumerate(gaps):
                    await anyio.sleep(gap)
                    worker.crash()
                    await worker.wait_runs(index + 2)  # restarted (or cancelled)
        except SupervisorEscalation:
            escalated = True
        return escalated, worker.runs, [e.at - t0 for e in exits.exits if e.kind == "crashed"]

    escalated, runs, crashed_at = trio.run(
        scenario, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    if expected is None:
        assert not escalated and runs == len(gaps) + 1
        assert crashed_at == crash_times
    else:
        assert escalated and runs == expected + 1
        assert crashed_at == crash_times[: expected + 1]
