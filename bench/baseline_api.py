"""The HTTP baseline: a bare FastAPI app, one POST taking a vehicle, 201.

It also has the bare counterparts of the inspection and customs routes the bench drives:
``POST /v1/inspections`` (an inspection with its checklist, 201) and
``POST /v1/webhooks/brokers/{broker_id}`` (a ``declaration.lodged`` message, 202; headers and
signature ignored), each as plain as the first. Each route takes and answers the service's
own schema models (``registry.schemas``, ``inspection.schemas``, ``customs.schemas``): the
bare route validates the very body the service validates, so the ratio measures what the
service does beyond that, and a schema change cannot leave the baseline behind.

``python -m bench.baseline_api PORT``; served like ``python -m registry api`` (uvicorn, one
worker, no access log). The handler is sync, so each request hops through the threadpool; the
registry's route is ``async def`` but its sync ``get_writer`` dependency makes the same hop.
An ``async def`` handler here runs ~2x faster and with a far shorter latency tail, which would
make the "bare endpoint" a stricter yardstick than the issue's wrk figure (~2,000 req/s).
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, status

from customs.schemas import LodgedMessage, WebhookAccepted
from inspection.schemas import FailedItem, InspectionCreate, InspectionPublic
from registry.schemas import VehicleCreate, VehiclePublic


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/vehicles", status_code=status.HTTP_201_CREATED)
    def register(body: VehicleCreate) -> VehiclePublic:
        return VehiclePublic(
            **body.model_dump(), stage="registered", registered_at=datetime.now(UTC)
        )

    @app.post("/v1/inspections", status_code=status.HTTP_201_CREATED)
    def inspect(body: InspectionCreate) -> InspectionPublic:
        failed = [
            FailedItem(code=i.code, severity="major") for i in body.items if i.result == "fail"
        ]
        return InspectionPublic(
            id=str(uuid.uuid4()),
            vin=body.vin,
            verdict="fail" if failed else "pass",
            first_inspection=True,
            certificate_no=None,
            valid_until=None,
            failed_items=failed,
            remarks=[],
            fraud_signals=[],
            inspected_at=body.inspected_at,
            received_at=datetime.now(UTC),
            policy_version="baseline",
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
