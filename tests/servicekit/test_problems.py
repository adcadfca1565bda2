"""servicekit.problems is pure: the clock and domain code raise problems in processes that
serve no HTTP (workers, the rescore children), and importing them must not load a web
framework. FastAPI's side (handlers, responses, the OpenAPI document) is problem_http."""

from __future__ import annotations

import json
import subprocess
import sys

from servicekit.problems import Conflict, problem_body


def loaded_after(*modules: str) -> list[str]:
    """The top-level packages loaded by importing ``modules`` in a fresh interpreter."""
    imports = "; ".join(f"import {m}" for m in modules)
    script = f"import sys; {imports}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return sorted({name.partition(".")[0] for name in json.loads(out.stdout)})


def test_the_clock_and_the_problems_load_no_web_framework() -> None:
    loaded = loaded_after("servicekit.clock", "servicekit.problems")
    assert "servicekit" in loaded and "pydantic" in loaded  # the check sees what is imported
    assert {"fastapi", "starlette"}.isdisjoint(loaded)


def test_the_http_side_is_where_fastapi_comes_in() -> None:
    assert "fastapi" in loaded_after("servicekit.problem_http")


def test_a_problem_body_is_the_rfc_9457_document() -> None:
    problem = Conflict("vehicle-already-registered", "VIN taken.", vehicle="/v1/vehicles/X")
    assert problem_body(problem) == {
        "type": "https://ucx.dev/problems/vehicle-already-registered",
        "title": "Vehicle already registered",
        "status": 409,
        "detail": "VIN taken.",
        "vehicle": "/v1/vehicles/X",
    }
