from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Simulator tests run on trio unless a test asks for both backends."""
    return "trio"
