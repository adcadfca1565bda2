from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registry.__main__ import SPEC

from helpers import service_client


@pytest.fixture
def registry(database_url: str) -> Iterator[TestClient]:
    for client, _settings in service_client(SPEC, database_url):
        yield client
