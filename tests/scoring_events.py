"""Random but valid events of every type scoring folds, spread over two years."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from contracts import envelope, events
from contracts.envelope import CloudEvent

import factories

USCCS = [factories.uscc(rng=random.Random(i)) for i in range(3)]
START = datetime(2025, 1, 1, tzinfo=UTC)


def random_event(rng: random.Random, vins: list[str]) -> CloudEvent:
    uscc = rng.choice(USCCS)
    at = START + timedelta(days=rng.uniform(0, 730))
    vin = rng.choice(vins) if vins and rng.random() < 0.3 else factories.vin(rng=rng)
    vins.append(vin)
    kind = rng.randrange(9)
    data: events.EventData
    if kind == 0:
        data = events.VehicleRegistered(
            enterprise_uscc=uscc, vin=vin, make="BYD", model="Qin Plus", model_year=2022,
            first_registration_date=date(2022, 6, 1), mileage_km=21_000, registered_at=at,
        )  # fmt: skip
    elif kind == 1:
        verdict = rng.choice(["pass", "fail"])
        data = events.VehicleInspected(
            enterprise_uscc=uscc, inspection_id=str(uuid.uuid4()), vin=vin, station_id="s",
            inspected_at=at, odometer_km=22_000, verdict=verdict,
            first_inspection=rng.random() < 0.8, items=[],
            failed_items=rng.sample(["BRAKES", "FIRE_DAMAGE_FREE", "TYRES"], k=1)
            if verdict == "fail" else [],
            fraud_signals=["odometer_rollback"] if rng.random() < 0.1 else [],
        )  # fmt: skip
    elif kind == 2:
        reasons = rng.sample(
            ["inspection_missing", "certificate_mismatch", "licence_missing", "vehicle_unknown",
             "declaration_open", "reason_from_2027"],
            k=rng.randrange(3),
        )  # fmt: skip
        data = events.VehicleDeclared(
            enterprise_uscc=uscc, declaration_no=f"D{rng.randrange(10**9)}", vin=vin,
            broker_id="b", outcome="rejected" if reasons else "accepted", reasons=reasons,
            port_of_loading="CNSHA", destination_country="RU", declared_at=at,
        )  # fmt: skip
    elif kind == 3:
        data = events.VehicleExported(
            enterprise_uscc=uscc, declaration_no=f"D{rng.randrange(10**9)}", vin=vin,
            bill_of_lading="COSU1", vessel_name="COSCO Fortune", vessel_imo="9074729",
            port_of_loading="CNSHA", departed_at=at,
        )  # fmt: skip
    elif kind == 4:
        data = events.ComplaintFiled(
            enterprise_uscc=uscc, complaint_id=f"c{rng.randrange(5)}", country="RU",
            category=rng.choice(["quality", "no_spare_parts", "warranty_refused"]), filed_at=at,
        )  # fmt: skip
    elif kind == 5:
        data = events.ComplaintResolved(
            enterprise_uscc=uscc, complaint_id=f"c{rng.randrange(5)}", resolved_at=at
        )
    elif kind == 6:
        data = events.EnterpriseStatusChanged.model_validate(
            {
                "enterprise_uscc": uscc, "from": None, "actor": "policy", "reason": "tier",
                "to": rng.choice(["admitted", "warned", "suspended"]), "changed_at": at,
            }
        )  # fmt: skip
    elif kind == 7:
        data = events.CertificateRevoked(
            enterprise_uscc=uscc, certificate_no="EXC-1", vin=vin, inspection_id="i",
            reason="forged papers", forged=rng.random() < 0.2, revoked_at=at,
        )  # fmt: skip
    else:
        reasons = rng.choice(
            [["declaration_not_released"], ["already_exported"], ["reason_from_2027"],
             ["enterprise_not_in_good_standing", "certificate_revoked"]]
        )  # fmt: skip
        data = events.DepartureRefused(
            enterprise_uscc=uscc, declaration_no="D1", vin=vin, broker_id="b",
            reason=reasons[0], reasons=reasons, step=rng.choice(["release", "departure"]),
            declaration_status="accepted", refused_at=at,
        )  # fmt: skip
    return envelope.new_event(data, source="ucx/test", time=at)


# -- one event at a time, now ------------------------------------------------------------


def event(data: events.EventData) -> CloudEvent:
    return envelope.new_event(data, source="ucx/test")


def registered(uscc: str, vin: str | None = None) -> CloudEvent:
    return event(
        events.VehicleRegistered(
            enterprise_uscc=uscc, vin=vin or factories.vin(), make="BYD", model="Qin Plus",
            model_year=2022, first_registration_date=date(2022, 6, 1), mileage_km=21_000,
            registered_at=datetime.now(UTC),
        )
    )  # fmt: skip


def inspected(uscc: str, verdict: str = "pass") -> CloudEvent:
    return event(
        events.VehicleInspected(
            enterprise_uscc=uscc, inspection_id=str(uuid.uuid4()), vin=factories.vin(),
            station_id="s", inspected_at=datetime.now(UTC), odometer_km=22_000, verdict=verdict,
            first_inspection=True, items=[],
            failed_items=["BRAKES"] if verdict == "fail" else [],
        )
    )  # fmt: skip


def exported(uscc: str) -> CloudEvent:
    return event(
        events.VehicleExported(
            enterprise_uscc=uscc, declaration_no=f"D{uuid.uuid4().hex[:10]}", vin=factories.vin(),
            bill_of_lading="COSU1", vessel_name="COSCO Fortune", vessel_imo="9074729",
            port_of_loading="CNSHA", departed_at=datetime.now(UTC),
        )
    )  # fmt: skip


def declared(uscc: str, *reasons: str) -> CloudEvent:
    """A declaration customs accepted, or refused for ``reasons``."""
    return event(
        events.VehicleDeclared(
            enterprise_uscc=uscc, declaration_no=f"D{uuid.uuid4().hex[:10]}", vin=factories.vin(),
            broker_id="b", outcome="rejected" if reasons else "accepted", reasons=list(reasons),
            port_of_loading="CNSHA", destination_country="KZ", declared_at=datetime.now(UTC),
        )
    )  # fmt: skip


def complaint(uscc: str, category: str = "quality") -> CloudEvent:
    return event(
        events.ComplaintFiled(
            enterprise_uscc=uscc, complaint_id=f"C-{uuid.uuid4().hex[:8]}", vin=factories.vin(),
            country="KZ", category=category, filed_at=datetime.now(UTC),
        )
    )  # fmt: skip


def forged(uscc: str) -> CloudEvent:
    """A certificate revoked because the inspection was forged."""
    return event(
        events.CertificateRevoked(
            enterprise_uscc=uscc, certificate_no=f"EXC-{uuid.uuid4().hex[:6]}",
            vin=factories.vin(), inspection_id=str(uuid.uuid4()), reason="forged stamp",
            forged=True, revoked_at=datetime.now(UTC),
        )
    )  # fmt: skip
