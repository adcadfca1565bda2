from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from customs import domain, policy
from servicekit.clock import CIVIL_ZONE

RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)
USCC = "91350100M000100Y43"
V1 = policy.load(policy.POLICIES / "v1.yaml")
OWNED = domain.VehicleFacts(USCC, date(2022, 4, 18), exported=False)
PASSED = domain.InspectionFacts("pass", "EXC-1", date(2027, 1, 1))


def lodged(**kw: object) -> domain.Lodged:
    args: dict[str, object] = {
        "vin": "LSVAU2180N2183294",
        "enterprise_uscc": USCC,
        "certificate_no": "EXC-1",
        "export_licence_no": "EL-2026-0001",
        "after_sales_letter_ref": None,
        "received_at": RECEIVED,
    }
    return domain.Lodged(**{**args, **kw})  # type: ignore[arg-type]


KNOWN = domain.Known(vehicle=OWNED, standing="admitted", inspection=PASSED)


def decide(declaration: domain.Lodged, **known: Any) -> domain.Decision:
    """The gates with what is known changed by ``known`` (Known's fields)."""
    return domain.decide(declaration, replace(KNOWN, **known), V1)


def settle(declaration: domain.Lodged, force: bool = False, **known: Any) -> domain.Decision | None:
    return domain.settle(declaration, replace(KNOWN, **known), V1, force=force)


def test_all_gates_hold_is_accepted() -> None:
    assert decide(lodged()) == domain.Decision("accepted", [], {})


def test_every_failing_gate_is_a_reason_not_just_the_first() -> None:
    d = decide(
        lodged(
            enterprise_uscc="91110000600037341L", certificate_no="EXC-9", export_licence_no=None
        ),
        standing="suspended",
        inspection=domain.InspectionFacts("pass", "EXC-1", date(2026, 11, 1)),
    )
    assert d.outcome == "rejected"
    assert d.reasons == [
        "vehicle_not_owned",
        "enterprise_not_in_good_standing",
        "inspection_expired",
        "certificate_mismatch",
        "licence_missing",
    ]
    assert d.details == {"enterprise_not_in_good_standing": "enterprise_suspended"}


def test_missing_or_failed_inspection_and_exported_vehicle() -> None:
    assert "inspection_missing" in decide(lodged(), inspection=None).reasons
    failed = domain.InspectionFacts("fail", None, None)
    assert decide(lodged(), inspection=failed).reasons == ["inspection_failed"]
    exported = domain.VehicleFacts(USCC, date(2022, 4, 18), exported=True)
    assert decide(lodged(), vehicle=exported).reasons == ["already_exported"]
    assert decide(lodged(), vehicle=None).reasons == ["vehicle_unknown"]


def test_an_open_declaration_of_the_vin_rejects_and_is_named() -> None:
    d = decide(lodged(), open_declaration="D00000000000004711")
    assert (d.reasons, d.details) == (
        ["declaration_open"],
        {"declaration_open": "D00000000000004711"},
    )


def test_young_vehicles_need_the_after_sales_letter() -> None:
    young = domain.VehicleFacts(USCC, date(2026, 9, 1), exported=False)
    assert decide(lodged(), vehicle=young).reasons == ["after_sales_letter_missing"]
    assert (
        decide(lodged(after_sales_letter_ref="SAIC-AS-2026-118"), vehicle=young).outcome
        == "accepted"
    )


def test_the_letter_rule_counts_180_days_inclusive_on_the_received_date() -> None:
    on_the_day = RECEIVED.date() - timedelta(days=180)
    a_day_older = on_the_day - timedelta(days=1)
    assert decide(lodged(), vehicle=domain.VehicleFacts(USCC, on_the_day, False)).reasons == [
        "after_sales_letter_missing"
    ]
    assert decide(lodged(), vehicle=domain.VehicleFacts(USCC, a_day_older, False)).reasons == []


def test_the_letter_is_required_from_the_received_date_2026_01_01_on() -> None:
    registered = domain.VehicleFacts(USCC, date(2025, 12, 1), False)
    new_year = datetime(2026, 1, 1, 0, 0, 30, tzinfo=CIVIL_ZONE)  # the date in China
    eve = new_year - timedelta(minutes=1)
    assert decide(lodged(received_at=eve), vehicle=registered).reasons == []
    assert decide(lodged(received_at=new_year), vehicle=registered).reasons == [
        "after_sales_letter_missing"
    ]


def test_certificate_validity_is_judged_on_the_received_date() -> None:
    until = domain.InspectionFacts("pass", "EXC-1", RECEIVED.date())
    assert decide(lodged(), inspection=until).outcome == "accepted"
    next_day = lodged(received_at=RECEIVED + timedelta(days=1))
    assert decide(next_day, inspection=until).reasons == ["inspection_expired"]


GATES_ALONE: dict[str, dict[str, Any]] = {
    "declaration_open": {"open_declaration": "D00000000000004711"},
    "vehicle_unknown": {"vehicle": None},
    "vehicle_not_owned": {"lodged": {"enterprise_uscc": "91110000600037341L"}},
    "already_exported": {"vehicle": domain.VehicleFacts(USCC, date(2022, 4, 18), exported=True)},
    "enterprise_not_in_good_standing": {"standing": "exited"},
    "inspection_missing": {"inspection": None},
    "inspection_failed": {"inspection": domain.InspectionFacts("fail", None, None)},
    "inspection_expired": {
        "inspection": domain.InspectionFacts("pass", "EXC-1", date(2026, 11, 19))
    },
    "certificate_revoked": {
        "inspection": domain.InspectionFacts("pass", "EXC-1", date(2027, 1, 1), True)
    },
    "certificate_mismatch": {"lodged": {"certificate_no": "EXC-2"}},
    "after_sales_letter_missing": {"vehicle": domain.VehicleFacts(USCC, date(2026, 10, 1), False)},
    "licence_missing": {"lodged": {"export_licence_no": None}},
}


def test_each_gate_alone_gives_exactly_its_reason() -> None:
    for reason, change in GATES_ALONE.items():
        declaration = lodged(**change.get("lodged", {}))
        facts = {k: v for k, v in change.items() if k != "lodged"}
        assert decide(declaration, **facts).reasons == [reason], reason


# -- decided as soon as it is certain ---------------------------------------------------------
def test_with_vehicle_and_inspection_known_the_gates_decide_at_once() -> None:
    assert settle(lodged()) == domain.Decision("accepted", [], {})
    failed = domain.InspectionFacts("fail", None, None)
    assert settle(lodged(), inspection=failed) == decide(lodged(), inspection=failed)


def test_a_declaration_waits_only_while_a_missing_event_could_make_it_acceptable() -> None:
    assert settle(lodged(), vehicle=None) is None
    assert settle(lodged(), inspection=None) is None
    assert settle(lodged(), vehicle=None, inspection=None) is None
    # an inspection of another certificate or a failed one may yet be followed by the right one
    other = domain.InspectionFacts("pass", "EXC-0", date(2027, 1, 1))
    assert settle(lodged(), vehicle=None, inspection=other) is None
    failed = domain.InspectionFacts("fail", None, None)
    assert settle(lodged(), vehicle=None, inspection=failed) is None
    # the enterprise's admission may be on its way like the vehicle
    assert settle(lodged(), vehicle=None, standing=None) is None


CERTAIN_WHILE_WAITING: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "declaration_open": ({"open_declaration": "D00000000000004711"}, {"vehicle": None}),
    "vehicle_not_owned": ({"lodged": {"enterprise_uscc": "91110000600037341L"}}, {}),
    "already_exported": ({"vehicle": domain.VehicleFacts(USCC, date(2022, 4, 18), True)}, {}),
    "after_sales_letter_missing": (
        {"vehicle": domain.VehicleFacts(USCC, date(2026, 10, 1), False)},
        {},
    ),
    "enterprise_not_in_good_standing": ({"standing": "suspended"}, {"vehicle": None}),
    "licence_missing": ({"lodged": {"export_licence_no": None}}, {"vehicle": None}),
    "certificate_revoked": (
        {"inspection": domain.InspectionFacts("pass", "EXC-1", date(2027, 1, 1), True)},
        {"vehicle": None},
    ),
    "inspection_expired": (
        {"inspection": domain.InspectionFacts("pass", "EXC-1", date(2026, 11, 19))},
        {"vehicle": None},
    ),
}


@pytest.mark.parametrize("reason", list(CERTAIN_WHILE_WAITING))
def test_a_certain_reason_rejects_at_once_with_only_the_certain_reasons(reason: str) -> None:
    change, missing = CERTAIN_WHILE_WAITING[reason]
    declaration = lodged(**change.get("lodged", {}))
    facts = {k: v for k, v in change.items() if k != "lodged"}
    # the vehicle's or the inspection's event is still missing: no *_unknown/_missing reason
    facts = {"inspection": None, **facts, **missing}
    decision = settle(declaration, **facts)
    assert decision is not None and decision.outcome == "rejected"
    assert decision.reasons == [reason]


def test_a_revoked_certificate_other_than_the_declared_one_may_yet_be_superseded() -> None:
    revoked_other = domain.InspectionFacts("pass", "EXC-0", date(2027, 1, 1), True)
    assert settle(lodged(), vehicle=None, inspection=revoked_other) is None


def test_after_the_wait_the_gates_decide_with_what_is_known() -> None:
    decision = settle(lodged(), vehicle=None, inspection=None, force=True)
    assert decision is not None
    assert decision.reasons == ["vehicle_unknown", "inspection_missing"]


# -- re-checked at release and departure ------------------------------------------------------
def step(**kw: object) -> list[str]:
    args: dict[str, object] = {
        "standing": "admitted",
        "inspection": PASSED,
        "certificate_no": "EXC-1",
        "received_on": RECEIVED.date(),
        "policy": V1,
    }
    return domain.step_refusals(**{**args, **kw})[0]  # type: ignore[arg-type]


def test_a_step_passes_while_standing_and_certificate_hold() -> None:
    assert step() == []
    assert step(standing="warned") == []


def test_a_step_is_refused_for_standing_revocation_expiry_or_a_newer_inspection() -> None:
    assert step(standing="suspended") == ["enterprise_not_in_good_standing"]
    revoked = domain.InspectionFacts("pass", "EXC-1", date(2027, 1, 1), True)
    assert step(inspection=revoked) == ["certificate_revoked"]
    assert step(received_on=date(2027, 1, 2)) == ["inspection_expired"]
    newer = domain.InspectionFacts("fail", None, None)
    assert step(inspection=newer) == ["certificate_mismatch"]
    assert step(standing="exited", inspection=revoked) == [
        "enterprise_not_in_good_standing",
        "certificate_revoked",
    ]
