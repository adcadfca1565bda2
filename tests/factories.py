"""Vivid, valid test data: real-looking VINs and USCCs with correct check characters."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date, timedelta
from typing import Any

from contracts import events
from contracts.identifiers import USCC_ALPHABET, uscc_check_char, vin_check_digit
from servicekit.clock import clock

_counter = itertools.count(1)
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
YEAR_CODE = {
    2019: "K", 2020: "L", 2021: "M", 2022: "N", 2023: "P", 2024: "R", 2025: "S", 2026: "T",
}  # fmt: skip


def vin(wmi: str = "LSV", model_year: int = 2022, rng: random.Random | None = None) -> str:
    """A China-built VIN (WMI 'LSV': SAIC Volkswagen) with a correct check digit."""
    r = rng or random
    vds = "".join(r.choice(_VIN_CHARS) for _ in range(5))
    serial = f"{next(_counter) % 1_000_000:06d}"
    plant = r.choice("ABCDEFGH")
    draft = f"{wmi}{vds}0{YEAR_CODE[model_year]}{plant}{serial}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def uscc(division: str = "350100", rng: random.Random | None = None) -> str:
    """A USCC registered in Fuzhou (350100) unless told otherwise."""
    r = rng or random
    org = "".join(r.choice(USCC_ALPHABET) for _ in range(9))
    body = f"91{division}{org}"
    return body + uscc_check_char(body)


def enterprise(code: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "uscc": code or uscc(),
        "name": "Fujian Haixi Used Vehicle Export Co., Ltd.",
        "kind": "dealer",
        "province": "350000",
        "address": "88 Wuyi Road, Gulou District, Fuzhou",
        "appraiser_count": 4,
        "contact": "export@haixi-auto.cn",
    }
    return {**body, **overrides}


def vehicle(enterprise_uscc: str, **overrides: Any) -> dict[str, Any]:
    today = clock.now().date()
    body = {
        "vin": vin(),
        "enterprise_uscc": enterprise_uscc,
        "make": "Volkswagen",
        "model": "Lavida Plus 1.5L",
        "model_year": 2022,
        "first_registration_date": "2022-04-18",
        "registration_certificate_no": "350100123456",
        "engine_no": "DMB428761",
        "mileage_km": 38200,
        "fuel_type": "petrol",
        "hs_code": "8703232910",
        "destination_country": "KZ",
        "transfer_endorsed_on": (today - timedelta(days=3)).isoformat(),
    }
    return {**body, **overrides}


def vehicle_registered(enterprise_uscc: str, **overrides: Any) -> events.VehicleRegistered:
    """The registry's ``vehicle.registered`` data for ``vehicle(enterprise_uscc)``, registered
    now: a registration as the other services' projections learn of it. ``overrides`` replace
    fields (``transfer_endorsed_on=None``: a vehicle copied before endorsements were kept)."""
    data = {**vehicle(enterprise_uscc), "registered_at": clock.now(), **overrides}
    return events.VehicleRegistered.model_validate(data)


CHECKLIST_CODES = [
    "VIN_MATCHES_CERTIFICATE",
    "ENGINE_NO_MATCHES_CERTIFICATE",
    "TRANSFER_ENDORSED",
    "STRUCTURAL_DAMAGE_FREE",
    "FLOOD_DAMAGE_FREE",
    "FIRE_DAMAGE_FREE",
    "ODOMETER_FUNCTIONAL",
    "ENGINE_TRANSMISSION",
    "FLUID_LEAKS",
    "OPEN_RECALLS_REMEDIED",
    "BRAKES",
    "STEERING",
    "TYRES",
    "LIGHTS_SIGNALS",
    "GLAZING",
    "SEATBELTS_AIRBAGS",
    "EMISSIONS",
    "CORROSION",
    "BODY_PANELS",
]


def inspection(vin_: str, odometer_km: int = 38950, fail: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "vin": vin_,
        "inspected_at": clock.now().isoformat(),
        "odometer_km": odometer_km,
        "inspector": "Chen Wei",
        "items": [
            {"code": c, "result": "fail" if c in fail else "pass", "note": None}
            for c in CHECKLIST_CODES
        ],
    }


def vehicle_inspected(
    enterprise_uscc: str, vin_: str, fail: tuple[str, ...] = (), **overrides: Any
) -> events.VehicleInspected:
    """Inspection's ``vehicle.inspected`` data for a first inspection now: a pass carries a
    certificate valid for 90 days, a fail names ``fail`` and has none."""
    passed = not fail
    certificate = f"EXC-2611-{uuid.uuid4().hex[:16].upper()}-7"
    data = {
        "enterprise_uscc": enterprise_uscc,
        "inspection_id": str(uuid.uuid4()),
        "vin": vin_,
        "station_id": str(uuid.uuid4()),
        "inspected_at": clock.now(),
        "odometer_km": 38950,
        "verdict": "pass" if passed else "fail",
        "first_inspection": True,
        "items": [],
        "failed_items": list(fail),
        "certificate_no": certificate if passed else None,
        "valid_until": clock.today() + timedelta(days=90) if passed else None,
    }
    return events.VehicleInspected.model_validate({**data, **overrides})


def declaration(vin_: str, uscc_: str, cert: str = "EXC-NONE", **kw: Any) -> dict[str, Any]:
    """A broker's ``declaration.lodged`` data (a fresh declaration number)."""
    return {
        "declaration_no": f"D{uuid.uuid4().int % 10**17:017d}",
        "vin": vin_,
        "enterprise_uscc": uscc_,
        "export_licence_no": "EL-2026-35-00871",
        "certificate_no": cert,
        "port_of_loading": "CNXMN",
        "destination_country": "KZ",
        "declared_at": clock.now().isoformat(),
        **kw,
    }


def station() -> dict[str, Any]:
    return {
        "name": "Fuzhou Motor Vehicle Inspection Centre",
        "accreditation": "CNAS L10542",
        "province": "350000",
        "accreditation_valid_until": (clock.today() + timedelta(days=365)).isoformat(),
    }


def today() -> date:
    return clock.now().date()
