import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from stack_support import RunningStack, running_stack  # the path above first

pytest_plugins = ["servicekit.testing"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The stack as real processes (the embedded broker, every service's api, relay and
    worker), one per test module."""
    yield from running_stack(tmp_path_factory)
