from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from contracts import envelope, events

import factories


def _registered() -> events.VehicleRegistered:
    return events.VehicleRegistered(
        enterprise_uscc="91350100M000100Y43",
        vin="1M8GDM9AXKP042788",
        make="Buick",
        model="Excelle",
        model_year=2019,
        first_registration_date="2019-05-02",
        mileage_km=60000,
        registered_at=datetime.now(UTC),
    )


def test_structured_mode_round_trip_is_readable_by_the_cloudevents_sdk() -> None:
    event = envelope.new_event(_registered(), source="ucx/registry", trace_id="ab" * 16)
    value = envelope.encode(event)
    message = ce_kafka.KafkaMessage(
        headers={k: v for k, v in envelope.headers(event)},
        key=event.enterpriseid.encode(),
        value=value,
    )
    parsed = ce_kafka.from_kafka(message, JSONFormat())  # mode detected from headers
    assert parsed.get_id() == event.id
    assert parsed.get_type() == "vehicle.registered"
    assert parsed.get_subject() == "1M8GDM9AXKP042788"
    assert parsed.get_extension("enterpriseid") == "91350100M000100Y43"
    assert envelope.decode(value) == event
    assert envelope.trace_id_of(event.traceparent) == "ab" * 16


def test_consumers_read_tolerantly_and_ignore_fields_added_later() -> None:
    event = envelope.new_event(_registered(), source="ucx/registry")
    newer = event.model_copy(update={"data": {**event.data, "colour": "white"}})
    assert newer.parse_data(events.VehicleRegistered).vin == "1M8GDM9AXKP042788"


def test_producers_are_strict() -> None:
    with pytest.raises(ValidationError):
        events.VehicleRegistered.model_validate({**_registered().model_dump(), "colour": "white"})
    with pytest.raises(ValidationError):
        events.VehicleRegistered.model_validate(
            {**_registered().model_dump(), "vin": factories.vin()[:-1]}
        )


def test_status_change_uses_from_and_to_on_the_wire() -> None:
    data = events.EnterpriseStatusChanged.model_validate(
        {
            "enterprise_uscc": "91350100M000100Y43",
            "from": "applied",
            "to": "admitted",
            "actor": "admin",
            "reason": "ok",
            "changed_at": datetime.now(UTC),
        }
    )
    wire = envelope.new_event(data, source="ucx/registry").data
    assert wire["from"] == "applied" and wire["to"] == "admitted"
