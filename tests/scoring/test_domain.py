from scoring import domain, policy
from scoring.settings import Settings

POLICY = policy.load(Settings().policy_path)


def test_policy_v1_loads_from_yaml() -> None:
    assert POLICY.version == "v1"
    assert sum(c.weight for c in POLICY.components.__dict__.values()) == 100


def test_a_new_enterprise_sits_at_the_prior() -> None:
    tally = domain.Tally()
    components = domain.components_of(POLICY, tally)
    assert components["quality"]["value"] == 0.8
    assert components["activity"]["value"] == 0.0
    assert domain.score_of(POLICY, tally) == 76.0


def test_first_inspection_failures_lower_quality_and_damage_counts_twice() -> None:
    tally = domain.Tally(vehicles=20, first_inspections=20, first_inspection_fails=2, exports=1)
    base = domain.components_of(POLICY, tally)["quality"]["value"]
    assert round(base, 4) == round((20 * 0.5 + 10 * 0.8) / 30, 4)
    damaged = domain.fold(
        POLICY,
        tally,
        "e1",
        "vehicle.inspected",
        {"first_inspection": True, "verdict": "fail", "failed_items": ["FLOOD_DAMAGE_FREE"]},
    )
    assert damaged.first_inspection_fails == 4


def test_tier_hysteresis_needs_three_points_to_move_back_up() -> None:
    assert domain.tier_for(POLICY, 79.9, "good") == "warning"
    assert domain.tier_for(POLICY, 81.0, "warning") == "warning"
    assert domain.tier_for(POLICY, 83.0, "warning") == "good"
    assert domain.tier_for(POLICY, 62.0, "exit") == "suspension"
    assert domain.tier_for(POLICY, 90.0, "exit") == "good"
    assert domain.tier_for(POLICY, 35.0, None) == "exit"
