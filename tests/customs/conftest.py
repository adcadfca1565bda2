"""What customs' tests start from: customs over its real ASGI app on each database under test
(``customs``), and the usual scene on it (``ready``: customs_support.Ready)."""

from collections.abc import Iterator

import pytest
from customs_support import Ready, customs_app
from fastapi.testclient import TestClient

from customs.settings import Settings


@pytest.fixture
def customs(database_url: str) -> Iterator[tuple[TestClient, Settings]]:
    yield from customs_app(database_url)


@pytest.fixture
def ready(customs: tuple[TestClient, Settings]) -> Ready:
    return Ready.of(*customs)
