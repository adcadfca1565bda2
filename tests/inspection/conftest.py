from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from servicekit.clock import clock

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
"""The moment the tests that move time start from (a Wednesday morning, 17:30 in Fuzhou)."""


@pytest.fixture
def now() -> Iterator[datetime]:
    """The service's clock stopped at ``NOW`` (tests move it with ``clock.set/advance``)."""
    clock.set(NOW)
    try:
        yield NOW
    finally:
        clock.reset()
