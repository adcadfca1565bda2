from datetime import date, datetime

import pytest

from inspection import domain, policy
from inspection.domain import ItemReport

import factories

V1 = policy.load("v1")


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
