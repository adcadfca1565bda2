import json

from contracts import schemas, topics
from contracts.events import BY_TOPIC


def test_committed_json_schemas_match_the_models() -> None:
    """Fails when a model changes without `make schemas` (python -m contracts.schemas)."""
    for name, schema in schemas.generated().items():
        path = schemas.SCHEMA_DIR / name
        assert path.exists(), f"{name} is not committed; run make schemas"
        assert json.loads(path.read_text()) == schema, f"{name} drifted; run make schemas"


def test_every_topic_has_a_model_and_a_schema() -> None:
    assert set(BY_TOPIC) == set(topics.ALL)
    committed = {p.name for p in schemas.SCHEMA_DIR.glob("*.json")}
    assert {f"{t}.json" for t in topics.ALL} <= committed
