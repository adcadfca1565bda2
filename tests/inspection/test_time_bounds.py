"""``inspected_at`` is the station's claim: kept, but bounded by the server's clock, the
policy's posting limit and the vehicle's transfer endorsement. Certificates run from the
inspection's own day and expire by the server's clock."""

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import envelope, events
from inspection import policy
from inspection.__main__ import SPEC
from inspection.policy import POLICIES
from inspection.settings import Settings
from servicekit.clock import CIVIL_ZONE, civil_date, clock

import factories
from helpers import bearer, service_client, sql

V1 = policy.load(policy.POLICIES / "v1.yaml")


@pytest.fixture
def inspection(database_url: str, tmp_path: object, now: datetime) -> Iterator[TestClient]:
    for client, _ in service_client(SPEC, database_url, signing_key_file=f"{tmp_path}/key"):
        yield client


Register = Callable[..., tuple[str, str]]
Post = Callable[[str, datetime], Any]


@pytest.fixture
def register(registered: Register) -> Register:
    """``register(endorsed_ago)``: a BYD Song Plus whose transfer was endorsed ``endorsed_ago``
    before now and registered for export a day later (or at ``registered_at``), as the
    registry's event brings it here; its (USCC, VIN). ``None``: a vehicle copied before
    endorsements were kept."""

    def byd(
        endorsed_ago: timedelta | None, registered_at: datetime | None = None
    ) -> tuple[str, str]:
        now = clock.now()
        endorsed = None if endorsed_ago is None else now - endorsed_ago
        return registered(
            vin=factories.vin(wmi="LGX", model_year=2023),
            make="BYD",
            model="Song Plus DM-i",
            model_year=2023,
            first_registration_date="2023-06-15",
            mileage_km=21_400,
            transfer_endorsed_on=None if endorsed is None else endorsed.date(),
            registered_at=registered_at or (endorsed + timedelta(days=1) if endorsed else now),
        )

    return byd


@pytest.fixture
def post(inspection: TestClient, station: Callable[..., dict[str, str]]) -> Post:
    """``post(vin, inspected_at)``: a new station's passing report, claimed at ``inspected_at``."""

    def send(vin: str, inspected_at: datetime) -> Any:
        body = {
            **factories.inspection(vin, odometer_km=21_950),
            "inspected_at": inspected_at.isoformat(),
        }
        return inspection.post("/v1/inspections", json=body, headers=bearer(station()["api_key"]))

    return send


def stored(client: TestClient) -> tuple[int, int]:
    """(inspections, vehicle.inspected events in the outbox)."""
    inspections = sql(client, "SELECT count(*) FROM inspections")[0][0]
    emitted = sql(client, "SELECT count(*) FROM outbox WHERE topic = 'vehicle.inspected.v1'")
    return int(inspections), int(emitted[0][0])


def refusal(r: Any) -> tuple[int, str, list[tuple[str, str]]]:
    assert r.headers["content-type"] == "application/problem+json", r.text
    body = r.json()
    return (
        r.status_code,
        body["type"].rsplit("/", 1)[1],
        [(e["field"], e["rule"]) for e in body["errors"]],
    )


def inspected_event(client: TestClient) -> events.VehicleInspected:
    (value,) = sql(client, "SELECT value FROM outbox WHERE topic = 'vehicle.inspected.v1'")[0]
    return envelope.decode(bytes(value)).parse_data(events.VehicleInspected)


def test_an_inspection_dated_100_days_ago_is_refused_and_nothing_is_stored(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    _uscc, vin = register(timedelta(days=101))
    r = post(vin, now - timedelta(days=100))
    assert refusal(r) == (422, "time-out-of-range", [("inspected_at", "time_out_of_range")])
    assert "7 days" in r.json()["detail"]
    assert stored(inspection) == (0, 0)


def test_the_posting_limit_is_the_policys_seven_days(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    assert V1.posting_limit == timedelta(days=7)
    _uscc, vin = register(timedelta(days=20))
    late = post(vin, now - timedelta(days=7, minutes=1))
    assert refusal(late)[2] == [("inspected_at", "time_out_of_range")]
    assert post(vin, now - timedelta(days=7) + timedelta(minutes=1)).status_code == 201
    assert stored(inspection) == (1, 1)


def test_an_inspection_dated_before_the_transfer_endorsement_is_refused(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    _uscc, vin = register(timedelta(days=2))
    endorsed_on = (now - timedelta(days=2)).date()
    on_the_day = datetime.combine(endorsed_on, datetime.min.time(), CIVIL_ZONE)  # in China
    r = post(vin, on_the_day - timedelta(minutes=1))
    assert refusal(r) == (
        422,
        "time-out-of-range",
        [("inspected_at", "inspected_before_transfer_endorsement")],
    )
    assert stored(inspection) == (0, 0)
    assert post(vin, on_the_day).status_code == 201


def test_an_inspection_beyond_the_clock_skew_in_the_future_is_refused(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    skew = timedelta(seconds=Settings().clock_skew_s)
    assert skew == timedelta(minutes=5)
    _uscc, vin = register(timedelta(days=3))
    r = post(vin, now + skew + timedelta(seconds=1))
    assert refusal(r) == (422, "time-out-of-range", [("inspected_at", "time_out_of_range")])
    assert stored(inspection) == (0, 0)
    # a station's clock a little ahead of ours is tolerated, and its claim kept as it was
    ahead = now + skew - timedelta(seconds=1)
    accepted = post(vin, ahead)
    assert accepted.status_code == 201
    assert datetime.fromisoformat(accepted.json()["inspected_at"]) == ahead
    assert datetime.fromisoformat(accepted.json()["received_at"]) == now


def test_a_vehicle_copied_before_endorsements_were_kept_is_bounded_by_the_posting_limit_alone(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    """A known vehicle without ``transfer_endorsed_on`` (copied before the column existed) has
    no endorsement bound: registered_at is later than the endorsement and would refuse honest
    inspections. The posting limit still holds."""
    _uscc, vin = register(None, registered_at=now - timedelta(hours=1))
    assert sql(inspection, "SELECT transfer_endorsed_on FROM known_vehicles")[0][0] is None
    assert post(vin, now - timedelta(days=3)).status_code == 201
    assert refusal(post(vin, now - timedelta(days=8)))[2] == [("inspected_at", "time_out_of_range")]


def test_a_certificate_runs_from_the_inspection_day_and_expires_by_the_clock(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    _uscc, vin = register(timedelta(days=9))
    inspected_at = now - timedelta(days=5)
    answer = post(vin, inspected_at).json()
    valid_until = civil_date(inspected_at) + timedelta(days=90)
    assert date.fromisoformat(answer["valid_until"]) == valid_until == date(2027, 2, 25)
    assert inspected_event(inspection).valid_until == valid_until  # not posting + 90 days

    def status() -> str:
        r = inspection.get(f"/v1/certificates/{answer['certificate_no']}", params={"vin": vin})
        assert r.status_code == 200, r.text
        return str(r.json()["status"])

    assert status() == "valid"
    clock.set(datetime.combine(valid_until, datetime.max.time(), CIVIL_ZONE))  # last moment
    assert status() == "valid"
    clock.advance(timedelta(microseconds=1))
    assert status() == "expired"


def test_the_verdict_records_its_policy_version_and_received_at_in_answer_row_and_event(
    register: Register, post: Post, inspection: TestClient, now: datetime
) -> None:
    _uscc, vin = register(timedelta(days=4))
    inspected_at = now - timedelta(hours=6)
    answer = post(vin, inspected_at).json()
    assert (answer["policy_version"], answer["verdict"]) == ("v1", "pass")
    event = inspected_event(inspection)
    assert (event.policy_version, event.inspected_at, event.received_at) == (
        "v1",
        inspected_at,
        now,
    )
    assert datetime.fromisoformat(answer["received_at"]) == now
    assert sql(inspection, "SELECT policy_version FROM inspections") == [("v1",)]


def test_the_policy_file_is_a_setting_and_a_missing_one_stops_the_start() -> None:
    assert Settings().policy_path == POLICIES / "v1.yaml"
    with pytest.raises(FileNotFoundError, match=r"v9\.yaml"):
        SPEC.create_app(Settings(policy_path=POLICIES / "v9.yaml"))


def test_the_policy_is_read_once_at_start_not_per_request(
    register: Register,
    post: Post,
    inspection: TestClient,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreadable(*_: object) -> None:
        raise AssertionError("the policy file was read while serving a request")

    monkeypatch.setattr(policy, "load", unreadable)
    monkeypatch.setattr("servicekit.policyfile.load", unreadable)
    _uscc, vin = register(timedelta(days=4))
    assert post(vin, now - timedelta(hours=2)).json()["policy_version"] == "v1"
