from datetime import UTC, date, datetime, timedelta

import pytest

from inspection import domain, policy
from inspection.domain import ItemReport
from inspection.schemas import InspectionCreate
from servicekit.problems import Problem

import factories

V1 = policy.load(policy.POLICIES / "v1.yaml")


def items(fail: tuple[str, ...] = (), na: tuple[str, ...] = ()) -> list[ItemReport]:
    return [
        ItemReport(c, "fail" if c in fail else "not_applicable" if c in na else "pass")
        for c in V1.checklist
    ]


def decide(reports: list[ItemReport], **kw: object) -> domain.Verdict:
    args: dict[str, object] = {
        "vin": factories.vin(model_year=2022),
        "model_year": 2022,
        "odometer_km": 40_000,
        "mileage_floor_km": 38_000,
    }
    return domain.decide(reports, V1, **{**args, **kw})  # type: ignore[arg-type]


def test_all_pass_is_pass() -> None:
    assert decide(items()).verdict == "pass"


def test_a_critical_or_major_failure_fails_and_a_minor_one_is_a_remark() -> None:
    assert decide(items(fail=("BRAKES",))).failed_items == ["BRAKES"]
    assert decide(items(fail=("TYRES",))).verdict == "fail"
    minor = decide(items(fail=("CORROSION",)))
    assert (minor.verdict, minor.remarks) == ("pass", ["CORROSION"])


def test_odometer_rollback_forces_fail() -> None:
    v = decide(items(), odometer_km=12_000)
    assert v.verdict == "fail"
    assert "odometer_rollback" in v.fraud_signals


def test_a_rollback_fails_only_where_the_policy_says_it_forces_fail() -> None:
    lenient = V1.model_copy(update={"odometer_rollback_fails": False})
    v = domain.decide(
        items(), lenient, vin=factories.vin(), model_year=2022, odometer_km=1, mileage_floor_km=9
    )
    assert (v.verdict, v.fraud_signals) == ("pass", ["odometer_rollback"])


def test_what_blocks_a_verdict_is_the_policys_choice_of_severities() -> None:
    strict = V1.model_copy(
        update={"blocking_severities": frozenset({"critical", "major", "minor"})}
    )
    v = domain.decide(
        items(fail=("CORROSION",)),
        strict,
        vin=factories.vin(),
        model_year=2022,
        odometer_km=40_000,
        mileage_floor_km=38_000,
    )
    assert (v.verdict, v.failed_items, v.remarks) == ("fail", ["CORROSION"], [])


def test_model_year_is_judged_against_the_vin_only_where_the_year_code_is_mandatory() -> None:
    china_built = factories.vin(model_year=2022)  # WMI LSV: position 10 must be the year
    assert decide(items(), vin=china_built, model_year=2019).fraud_signals == [
        "vin_model_year_mismatch"
    ]
    # a German-built Volkswagen (WMI WVW): position 10 need not be a year code, so a 'Z'
    # there says nothing about the model year
    german = "WVWZZZ1KZZW000123"
    assert decide(items(), vin=german, model_year=2019).fraud_signals == []


def test_certificate_validity_runs_from_the_inspection_day_in_china() -> None:
    # 07:00 in Fuzhou on 21 Nov (still 20 Nov in UTC) is the 21st on the certificate
    inspected = datetime.fromisoformat("2026-11-21T07:00:00+08:00")
    assert domain.certificate_valid_until(inspected, V1) == date(2027, 2, 19)  # 21 Nov + 90 d
    late_evening = datetime.fromisoformat("2026-11-21T23:30:00+08:00")
    assert domain.certificate_valid_until(late_evening, V1) == date(2027, 2, 19)


def test_the_policy_refuses_codes_outside_its_checklist() -> None:
    data = V1.model_dump()
    with pytest.raises(ValueError, match="may_not_apply names codes not in the checklist"):
        policy.InspectionPolicy.model_validate({**data, "may_not_apply": ["TURBO"]})
    with pytest.raises(ValueError, match="damage items always apply"):
        policy.InspectionPolicy.model_validate({**data, "may_not_apply": ["FLOOD_DAMAGE_FREE"]})


def test_checklist_must_be_complete_unique_known_and_applicable() -> None:
    reports = [*items(na=("BRAKES", "EMISSIONS"))[1:], ItemReport("TURBO", "pass")]
    reports.append(reports[0])
    with pytest.raises(domain.ChecklistError) as caught:
        domain.check_items(reports, V1)
    rules = {p["rule"]: p["message"] for p in caught.value.problems}
    assert "VIN_MATCHES_CERTIFICATE" in rules["checklist_missing_codes"]
    assert "TURBO" in rules["checklist_unknown_codes"]
    assert "ENGINE_NO_MATCHES_CERTIFICATE" in rules["checklist_duplicate_codes"]
    assert "BRAKES" in rules["checklist_item_always_applies"]
    assert "EMISSIONS" not in rules["checklist_item_always_applies"]


def test_certificate_numbers_are_unguessable_and_checksummed() -> None:
    numbers = {domain.new_certificate_no(date(2026, 11, 20)) for _ in range(1000)}
    assert len(numbers) == 1000
    sample = numbers.pop()
    assert sample.startswith("EXC-2611-") and domain.certificate_checksum_ok(sample)
    tampered = sample[:-3] + ("0" if sample[-3] != "0" else "1") + sample[-2:]
    assert not domain.certificate_checksum_ok(tampered)


# inspect: the whole report judged into a decided inspection, or the problem it is refused with

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
SKEW = timedelta(minutes=5)
ENDORSED = date(2026, 11, 27)
NONE_EARLIER = domain.Earlier(count=0, max_odometer_km=None)


def known(standing: str | None = "admitted", mileage_km: int = 38_200) -> domain.Vehicle:
    return domain.Vehicle("91350100MA2XN5KQ7B", 2022, mileage_km, ENDORSED, standing)


def report(vin: str, inspected_at: datetime, **kw: object) -> InspectionCreate:
    return InspectionCreate.model_validate(
        {**factories.inspection(vin), "inspected_at": inspected_at.isoformat(), **kw}
    )


def inspect(
    sent: InspectionCreate,
    vehicle: domain.Vehicle | None,
    earlier: domain.Earlier = NONE_EARLIER,
) -> domain.Inspected | Problem:
    return domain.inspect(
        sent, V1, station_id="st-fz-01", vehicle=vehicle, earlier=earlier, now=NOW, skew=SKEW
    )


def refusal(outcome: domain.Inspected | Problem) -> tuple[int, str]:
    assert isinstance(outcome, Problem), outcome
    return outcome.status, outcome.type_


def test_a_report_is_refused_for_its_first_fault_checklist_vehicle_time_then_standing() -> None:
    vin = factories.vin(model_year=2022)
    incomplete = report(vin, NOW, items=factories.inspection(vin)["items"][1:])
    future = report(vin, NOW + timedelta(hours=1))
    in_time = report(vin, NOW - timedelta(hours=2))
    assert refusal(inspect(incomplete, None)) == (422, "checklist-invalid")
    assert refusal(inspect(future, None)) == (404, "vehicle-not-registered")
    assert refusal(inspect(future, known("suspended"))) == (422, "time-out-of-range")
    before_endorsement = inspect(report(vin, datetime(2026, 11, 26, 10, tzinfo=UTC)), known())
    assert refusal(before_endorsement) == (422, "time-out-of-range")
    assert isinstance(before_endorsement, Problem)
    assert before_endorsement.extra["errors"][0]["rule"] == "inspected_before_transfer_endorsement"
    assert refusal(inspect(in_time, known("suspended"))) == (409, "enterprise-suspended")
    assert refusal(inspect(in_time, known("applied"))) == (409, "enterprise-applied")
    assert isinstance(inspect(in_time, known(standing=None)), domain.Inspected)


def test_a_pass_is_decided_whole_certificate_validity_and_the_times_it_was_judged_at() -> None:
    vin = factories.vin(model_year=2022)
    inspected_at = NOW - timedelta(hours=2)
    decided = inspect(report(vin, inspected_at), known())
    assert isinstance(decided, domain.Inspected)
    assert (decided.vin, decided.station_id, decided.verdict) == (vin, "st-fz-01", "pass")
    assert decided.enterprise_uscc == "91350100MA2XN5KQ7B" and decided.first_inspection
    assert decided.certificate_no is not None
    assert decided.certificate_no.startswith("EXC-2612-")
    assert domain.certificate_checksum_ok(decided.certificate_no)
    assert decided.valid_until == domain.certificate_valid_until(inspected_at, V1)
    assert (decided.inspected_at, decided.received_at) == (inspected_at, NOW)
    assert decided.policy_version == "v1"
    assert {"code": "BRAKES", "result": "pass", "severity": "critical", "note": None} in (
        decided.items
    )


def test_earlier_inspections_make_a_reinspection_and_raise_the_mileage_floor() -> None:
    vin = factories.vin(model_year=2022)
    sent = report(vin, NOW - timedelta(hours=2), odometer_km=39_000)
    decided = inspect(sent, known(mileage_km=38_200), domain.Earlier(1, 41_500))
    assert isinstance(decided, domain.Inspected)
    assert (decided.first_inspection, decided.verdict) == (False, "fail")
    assert decided.fraud_signals == ["odometer_rollback"]
    assert (decided.certificate_no, decided.valid_until) == (None, None)
