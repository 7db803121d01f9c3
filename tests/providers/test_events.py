"""The normalized stream events."""

from __future__ import annotations

import gc

from providers.events import Citations, TextDelta, ToolCallDelta, Usage


def test_per_token_events_stay_out_of_the_cyclic_collector() -> None:
    # They hold only scalars, so they cannot be in a cycle (see providers.events);
    # a list can, so Citations stays tracked.
    assert not gc.is_tracked(TextDelta(text="x"))
    assert not gc.is_tracked(ToolCallDelta(index=0, arguments="{}"))
    assert not gc.is_tracked(Usage(input_tokens=1))
    assert gc.is_tracked(Citations(urls=["https://example.com"]))
