"""The HTTP baseline: a bare FastAPI app, one POST taking a vehicle-shaped body, 201.

It also has the bare counterparts of the inspection and customs routes the bench drives:
``POST /v1/inspections`` (an inspection with its checklist, 201) and
``POST /v1/webhooks/brokers/{broker_id}`` (a ``declaration.lodged`` message, 202; headers and
signature ignored), each as plain as the first.

``python -m bench.baseline_api PORT``; served like ``python -m registry api`` (uvicorn, one
worker, no access log). The handler is sync, so each request hops through the threadpool; the
registry's route is ``async def`` but its sync ``get_writer`` dependency makes the same hop.
An ``async def`` handler here runs ~2x faster and with a far shorter latency tail, which would
make the "bare endpoint" a stricter yardstick than the issue's wrk figure (~2,000 req/s).
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, date, datetime
from typing import Literal

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


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    result: Literal["pass", "fail", "not_applicable"]
    note: str | None = None


class InspectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vin: str
    inspected_at: datetime
    odometer_km: int
    items: list[ItemIn]
    inspector: str | None = None


class InspectionOut(BaseModel):
    id: str
    vin: str
    verdict: str
    first_inspection: bool
    certificate_no: str | None
    valid_until: date | None
    failed_items: list[str]
    inspected_at: datetime


class LodgedData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    declaration_no: str
    vin: str
    enterprise_uscc: str
    export_licence_no: str | None = None
    certificate_no: str | None = None
    port_of_loading: str
    destination_country: str
    declared_at: datetime


class LodgedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["declaration.lodged"]
    timestamp: datetime
    data: LodgedData


class WebhookAccepted(BaseModel):
    webhook_id: str
    type: str
    declaration_no: str
    status: str
    reasons: list[str]


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/vehicles", status_code=status.HTTP_201_CREATED)
    def register(body: VehicleIn) -> VehicleOut:
        return VehicleOut(**body.model_dump(), stage="registered", registered_at=datetime.now(UTC))

    @app.post("/v1/inspections", status_code=status.HTTP_201_CREATED)
    def inspect(body: InspectionIn) -> InspectionOut:
        failed = [i.code for i in body.items if i.result == "fail"]
        return InspectionOut(
            id=str(uuid.uuid4()),
            vin=body.vin,
            verdict="fail" if failed else "pass",
            first_inspection=True,
            certificate_no=None,
            valid_until=None,
            failed_items=failed,
            inspected_at=body.inspected_at,
        )

    @app.post("/v1/webhooks/brokers/{broker_id}", status_code=status.HTTP_202_ACCEPTED)
    def webhook(broker_id: str, body: LodgedMessage) -> WebhookAccepted:
        return WebhookAccepted(
            webhook_id=broker_id,
            type=body.type,
            declaration_no=body.data.declaration_no,
            status="accepted",
            reasons=[],
        )

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False
    )
