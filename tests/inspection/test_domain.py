from datetime import UTC, date, datetime, timedelta

import pytest

from inspection import domain
from inspection.domain import ItemReport

import factories

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def items(fail: tuple[str, ...] = (), na: tuple[str, ...] = ()) -> list[ItemReport]:
    return [
        ItemReport(c, "fail" if c in fail else "not_applicable" if c in na else "pass")
        for c in domain.CHECKLIST
    ]


def decide(reports: list[ItemReport], **kw: object) -> domain.Verdict:
    args: dict[str, object] = {
        "vin": factories.vin(model_year=2022),
        "model_year": 2022,
        "odometer_km": 40_000,
        "mileage_floor_km": 38_000,
        "inspected_at": NOW - timedelta(hours=1),
        "registered_at": NOW - timedelta(days=3),
        "now": NOW,
    }
    return domain.decide(reports, **{**args, **kw})  # type: ignore[arg-type]


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


def test_model_year_and_time_signals() -> None:
    v = decide(items(), model_year=2019, inspected_at=NOW + timedelta(days=1))
    assert {"vin_model_year_mismatch", "inspected_in_future"} <= set(v.fraud_signals)
    early = decide(items(), inspected_at=NOW - timedelta(days=30))
    assert "inspected_before_registration" in early.fraud_signals


def test_checklist_must_be_complete_unique_known_and_applicable() -> None:
    reports = [*items(na=("BRAKES", "EMISSIONS"))[1:], ItemReport("TURBO", "pass")]
    reports.append(reports[0])
    with pytest.raises(domain.ChecklistError) as caught:
        domain.check_items(reports)
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
