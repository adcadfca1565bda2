"""Valid, vivid, unique bench data: VINs and USCCs with correct check characters, the one car
every target registers, inspects, declares and exports, and the bodies the APIs take."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from contracts import events
from contracts.envelope import encode, headers, new_event
from contracts.identifiers import USCC_ALPHABET, uscc_check_char, vin_check_digit
from registry.schemas import EnterpriseCreate

_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
MODEL_YEAR = 2022
MILEAGE_KM = 38200
_YEAR_CODE = "N"  # ISO 3779 position 10 for 2022
CHECKLIST = (
    "VIN_MATCHES_CERTIFICATE", "ENGINE_NO_MATCHES_CERTIFICATE", "TRANSFER_ENDORSED",
    "STRUCTURAL_DAMAGE_FREE", "FLOOD_DAMAGE_FREE", "FIRE_DAMAGE_FREE", "ODOMETER_FUNCTIONAL",
    "ENGINE_TRANSMISSION", "FLUID_LEAKS", "OPEN_RECALLS_REMEDIED", "BRAKES", "STEERING", "TYRES",
    "LIGHTS_SIGNALS", "GLAZING", "SEATBELTS_AIRBAGS", "EMISSIONS", "CORROSION", "BODY_PANELS",
)  # fmt: skip


@dataclass
class Ids:
    """Unique identifiers for one run; the serial makes every VIN distinct."""

    rng: random.Random = field(default_factory=lambda: random.Random(20250101))
    _serials: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _usccs: set[str] = field(default_factory=set)

    def vin(self) -> str:
        """A China-built VIN (WMI 'LSV', SAIC Volkswagen) with a correct check digit."""
        vds = "".join(self.rng.choice(_VIN_CHARS) for _ in range(5))
        plant = self.rng.choice("ABCDEFGH")
        draft = f"LSV{vds}0{_YEAR_CODE}{plant}{next(self._serials):06d}"
        return draft[:8] + vin_check_digit(draft) + draft[9:]

    def uscc(self, division: str = "350100") -> str:
        """A new USCC registered in Fuzhou (province 350000)."""
        while True:
            body = "91" + division + "".join(self.rng.choice(USCC_ALPHABET) for _ in range(9))
            code = body + uscc_check_char(body)
            if code not in self._usccs:
                self._usccs.add(code)
                return code


def enterprise(uscc: str) -> dict[str, Any]:
    """The registry's ``POST /v1/enterprises`` body for a bench enterprise, checked by the
    registry's own schema as it is built."""
    return EnterpriseCreate(
        uscc=uscc, name="Fujian Haixi Used Vehicle Export Co., Ltd.", kind="dealer",
        province="350000", address="88 Wuyi Road, Gulou District, Fuzhou", appraiser_count=4,
        contact="export@haixi-auto.cn",
    ).model_dump(mode="json")  # fmt: skip


def registered(uscc: str, vin: str, at: datetime) -> events.VehicleRegistered:
    """The bench's car (a 2022 Lavida, endorsed for transfer three days before), registered
    at ``at``: every target's vehicle, as events and as the registry's body."""
    return events.VehicleRegistered(
        enterprise_uscc=uscc, vin=vin, make="Volkswagen", model="Lavida Plus 1.5L",
        model_year=MODEL_YEAR, first_registration_date=date(2022, 4, 18),
        mileage_km=MILEAGE_KM, registration_certificate_no="350100123456",
        engine_no="DMB428761", fuel_type="petrol", hs_code="8703232910",
        destination_country="KZ", transfer_endorsed_on=at.date() - timedelta(days=3),
        registered_at=at,
    )  # fmt: skip


def vehicle(uscc: str, vin: str, today: date) -> dict[str, Any]:
    """The registry's ``POST /v1/vehicles`` body for the bench's car."""
    registration = registered(uscc, vin, datetime.combine(today, time(), UTC))
    return registration.model_dump(mode="json", exclude={"registered_at"})


def lifecycle(ids: Ids, uscc: str, now: datetime) -> list[events.EventData]:
    """One car's vehicle events: registered, inspected, declared and (unless refused) exported."""
    vin = ids.vin()
    serial = vin[-6:]
    failed = [c for c in ("BRAKES", "FLOOD_DAMAGE_FREE") if ids.rng.random() < 0.05]
    verdict = "fail" if failed else "pass"
    certificate = None if failed else f"FZ-CERT-2025-{serial}"
    rejected = bool(failed) or ids.rng.random() < 0.03
    declaration_no = f"350120250{serial}"
    story: list[events.EventData] = [
        registered(uscc, vin, now),
        events.VehicleInspected(
            enterprise_uscc=uscc, inspection_id=f"insp-{serial}", vin=vin,
            station_id="FZ-MVIC-01", inspected_at=now, odometer_km=38950, verdict=verdict,
            first_inspection=True,
            items=[
                events.InspectionItem(
                    code=c, result="fail" if c in failed else "pass", severity="major"
                )
                for c in CHECKLIST
            ],
            failed_items=failed, certificate_no=certificate,
            valid_until=None if failed else now.date() + timedelta(days=90),
        ),
        events.VehicleDeclared(
            enterprise_uscc=uscc, declaration_no=declaration_no, vin=vin, broker_id="broker-fz-7",
            outcome="rejected" if rejected else "accepted",
            reasons=["inspection_failed"] if rejected else [],
            export_licence_no=None if rejected else f"EL-2025-{serial}",
            certificate_no=certificate, port_of_loading="CNFOC", destination_country="KZ",
            declared_at=now,
        ),
    ]  # fmt: skip
    if rejected:
        return story  # a car refused at the gate never sails
    exported = events.VehicleExported(
        enterprise_uscc=uscc, declaration_no=declaration_no, vin=vin,
        bill_of_lading=f"FOCALA{serial}", vessel_name="Hoegh Trapper",
        vessel_imo="IMO9811000", port_of_loading="CNFOC", departed_at=now,
    )  # fmt: skip
    return [*story, exported]


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def scoring_records(count: int, enterprises: int, ids: Ids) -> list[KafkaRecord]:
    """``count`` CloudEvents over the four vehicle topics, keyed by ``enterprises`` USCCs."""
    usccs = [ids.uscc() for _ in range(enterprises)]
    now = datetime.now(UTC)
    records: list[KafkaRecord] = []
    while len(records) < count:
        uscc = usccs[ids.rng.randrange(enterprises)]
        for data in lifecycle(ids, uscc, now)[: count - len(records)]:
            event = new_event(data, source="ucx/bench")
            records.append(KafkaRecord(data.TOPIC, uscc.encode(), encode(event), headers(event)))
    return records
