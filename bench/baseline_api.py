"""The HTTP baseline: a bare FastAPI app, one POST taking a vehicle-shaped body, 201.

``python -m bench.baseline_api PORT``; served like ``python -m registry api`` (uvicorn, one
worker, no access log). The handler is sync, so each request hops through the threadpool; the
registry's route is ``async def`` but its sync ``get_writer`` dependency makes the same hop.
An ``async def`` handler here runs ~2x faster and with a far shorter latency tail, which would
make the "bare endpoint" a stricter yardstick than the issue's wrk figure (~2,000 req/s).
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import uvicorn
from fastapi import FastAPI, status
from pydantic import BaseModel, ConfigDict


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vin: str
    enterprise_uscc: str
    make: str
    model: str
    model_year: int
    first_registration_date: date
    registration_certificate_no: str
    engine_no: str
    mileage_km: int
    fuel_type: str
    hs_code: str
    destination_country: str
    transfer_endorsed_on: date


class VehicleOut(VehicleIn):
    stage: str
    registered_at: datetime


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/vehicles", status_code=status.HTTP_201_CREATED)
    def register(body: VehicleIn) -> VehicleOut:
        return VehicleOut(**body.model_dump(), stage="registered", registered_at=datetime.now(UTC))

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False
    )
