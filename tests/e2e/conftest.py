"""The stack as real processes: the embedded broker, every service's api, relay and worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servicekit.broker import EmbeddedBroker
from servicekit.topics import provision

from stack_support import RunningStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    broker = EmbeddedBroker().start()
    provision(broker.bootstrap_servers)
    running = RunningStack(tmp_path_factory.mktemp("stack"), broker)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        broker.stop()
