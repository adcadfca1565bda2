"""schemathesis against every service's own OpenAPI: no 500, no answer off its schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.checks as checks
from hypothesis import HealthCheck, given, settings

from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit import migrate
from servicekit.cli import ServiceSpec

from helpers import ADMIN_TOKEN

SERVICES: dict[str, tuple[ServiceSpec, int]] = {
    # the number of operations each OpenAPI document is expected to list, at least
    "registry": (REGISTRY, 12),
    "inspection": (INSPECTION, 9),
    "customs": (CUSTOMS, 12),
    "scoring": (SCORING, 9),
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
EXTRA: dict[str, dict[str, Any]] = {
    "inspection": {"verify_rate_per_minute": 100_000},
}


@pytest.fixture(params=list(SERVICES))
def api_schema(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, int]]:
    name: str = request.param
    spec, operations = SERVICES[name]
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    migrate.upgrade(spec.migrations, url)
    update: dict[str, Any] = {
        "database_url": url,
        "admin_token": ADMIN_TOKEN,
        **EXTRA.get(name, {}),
    }
    if name == "inspection":
        update["signing_key_file"] = str(tmp_path / "key")
    app = spec.create_app(spec.settings().model_copy(update=update))
    yield schemathesis.openapi.from_asgi("/openapi.json", app), operations


def test_no_input_causes_a_500_or_an_answer_off_the_schema(api_schema: tuple[Any, int]) -> None:
    schema, expected = api_schema
    operations = [result.ok() for result in schema.get_all_operations()]  # raises on a bad one
    documented = [m for item in schema.raw_schema["paths"].values() for m in item if m in METHODS]
    assert len(operations) == len(documented) >= expected, "every operation is fuzzed"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                # Domain rules (VIN check digits, the checklist, signatures) refuse input the
                # schema alone allows: that is a 4xx by design, not a defect.
                excluded_checks=[checks.positive_data_acceptance],
            )

        fuzz()


def test_stateful_sequences_cause_no_500_and_no_answer_off_the_schema(
    api_schema: tuple[Any, int],
) -> None:
    """Stateful: schemathesis chains operations through the links it infers from each
    document (a complaint filed, then read and resolved by the id the answer gave)."""
    schema, _ = api_schema
    machine = schema.as_state_machine()
    chained = {
        source: [link.target.label for link in transitions.outgoing]
        for source, transitions in machine._transitions.operations.items()
        if transitions.outgoing
    }
    assert chained, "no operation links to another: nothing stateful to test"

    class Workflow(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kw: Any
        ) -> None:
            """schemathesis' own: the default checks plus the stateful ones it adds (use after
            free, resource availability) with the scenario's recorder, minus one, as above."""
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=[checks.positive_data_acceptance],
                transport_kwargs=kw or None,
                recorder=self.recorder,
            )

    Workflow.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
