"""The HTTP baseline: a bare FastAPI app, one POST taking a vehicle-shaped body, 201.

``python -m bench.baseline_api PORT``; served like ``python -m registry api`` (uvicorn, one
worker, no access log) and, like the registry route, a sync handler run in the threadpool.
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
