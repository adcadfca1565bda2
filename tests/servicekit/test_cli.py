"""servicekit.cli's ServiceSpec, the one description every service's ``__main__`` gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

import servicekit
from servicekit.cli import ServiceSpec, run
from servicekit.settings import BaseServiceSettings


def spec(name: str) -> ServiceSpec:
    return ServiceSpec(name, BaseServiceSettings, lambda _settings: FastAPI())


def test_the_migrations_are_beside_the_packages_src_folder() -> None:
    # libs/servicekit/src/servicekit -> libs/servicekit/migrations, as services/<name>/migrations
    package = Path(servicekit.__file__).resolve().parent
    assert spec("servicekit").migrations == package.parent.parent / "migrations"
    with pytest.raises(LookupError, match="not an importable package"):
        _ = spec("servicekit.cli").migrations
    assert spec("servicekit").subscriptions(BaseServiceSettings()) == ()


def test_run_does_nothing_when_the_main_module_is_imported() -> None:
    run(spec("servicekit"), "some_service.__main__")  # would parse pytest's argv and exit if it ran
