from datetime import UTC, date, datetime

from customs import domain

DECLARED = datetime(2026, 11, 20, 10, tzinfo=UTC)
USCC = "91350100M000100Y43"


def lodged(**kw: object) -> domain.Lodged:
    args: dict[str, object] = {
        "vin": "LSVAU2180N2183294",
        "enterprise_uscc": USCC,
        "certificate_no": "EXC-1",
        "export_licence_no": "EL-2026-0001",
        "after_sales_letter_ref": None,
        "declared_at": DECLARED,
    }
    return domain.Lodged(**{**args, **kw})  # type: ignore[arg-type]


def decide(declaration: domain.Lodged, **kw: object) -> domain.Decision:
    args: dict[str, object] = {
        "vehicle": domain.VehicleFacts(USCC, date(2022, 4, 18), exported=False),
        "standing": "admitted",
        "inspection": domain.InspectionFacts("pass", "EXC-1", date(2027, 1, 1)),
        "letter_required_from": date(2026, 1, 1),
        "letter_max_age_days": 180,
    }
    return domain.decide(declaration, **{**args, **kw})  # type: ignore[arg-type]


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


def test_young_vehicles_need_the_after_sales_letter() -> None:
    young = domain.VehicleFacts(USCC, date(2026, 9, 1), exported=False)
    assert decide(lodged(), vehicle=young).reasons == ["after_sales_letter_missing"]
    assert (
        decide(lodged(after_sales_letter_ref="SAIC-AS-2026-118"), vehicle=young).outcome
        == "accepted"
    )


def test_a_declaration_waits_for_events_that_may_be_late() -> None:
    assert domain.must_wait(None, None)
    assert not domain.must_wait(
        domain.VehicleFacts(USCC, date(2022, 1, 1), False),
        domain.InspectionFacts("fail", None, None),
    )


GATES_ALONE = {
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
        declaration = lodged(**change.get("lodged", {}))  # type: ignore[arg-type]
        facts = {k: v for k, v in change.items() if k != "lodged"}
        assert decide(declaration, **facts).reasons == [reason], reason
