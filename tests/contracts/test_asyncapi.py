"""contracts/asyncapi.yaml is hand-written; these tests hold it to the code it documents."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import envelope, identifiers, topics
from contracts.events import BY_TOPIC, BY_TYPE
from servicekit import consumer, outbox
from servicekit.cli import ServiceSpec
from servicekit.settings import BaseServiceSettings

import factories

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
DOCUMENT = CONTRACTS / "asyncapi.yaml"

PRODUCERS = {  # DESIGN.md §3
    topics.VEHICLE_REGISTERED: "registry",
    topics.VEHICLE_INSPECTED: "inspection",
    topics.CERTIFICATE_REVOKED: "inspection",
    topics.VEHICLE_DECLARED: "customs",
    topics.VEHICLE_EXPORTED: "customs",
    topics.DEPARTURE_REFUSED: "customs",
    topics.COMPLAINT_FILED: "registry",
    topics.COMPLAINT_RESOLVED: "registry",
    topics.STATUS_CHANGED: "registry",
    topics.ASSESSED: "scoring",
}
SERVICES = ("registry", "inspection", "customs", "scoring")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DOCUMENT.read_text())
    assert isinstance(loaded, dict)
    return loaded


def pointer(node: Any, fragment: str) -> Any:
    """The node at a JSON pointer (``/a/b``); KeyError/IndexError when there is none."""
    for raw in fragment.lstrip("/").split("/") if fragment.strip("/") else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def load(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow ``$ref`` (document-local or a file under contracts/) until a real node."""
    while isinstance(node, dict) and "$ref" in node:
        target, _, fragment = node["$ref"].partition("#")
        root = load(CONTRACTS / target) if target else doc
        node = pointer(root, fragment)
    return node


def refs(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every ``$ref`` value below ``node``, with the path where it was found."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where or "/", value
            else:
                yield from refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{where}/{i}")


def channels_by_address(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for channel_id, channel in doc["channels"].items():
        assert channel["address"] not in out, f"two channels for {channel['address']}"
        out[channel["address"]] = (channel_id, channel)
    return out


def only_message(doc: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    messages = list(channel["messages"].values())
    assert len(messages) == 1, f"{channel['address']} should carry one message"
    message = resolve(doc, messages[0])
    assert isinstance(message, dict)
    return message


def envelope_override(doc: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """The ``allOf`` part that pins ``type`` and replaces ``data``."""
    parts = resolve(doc, message["payload"])["allOf"]
    assert {"$ref": "./schemas/cloudevent.json"} in parts, "payload is not the envelope"
    overrides = [p for p in parts if "$ref" not in p]
    assert len(overrides) == 1
    properties = overrides[0]["properties"]
    assert isinstance(properties, dict)
    return properties


def service_of(doc: dict[str, Any], operation: dict[str, Any]) -> str:
    names = {resolve(doc, tag)["name"] for tag in operation.get("tags", [])}
    services = names & set(SERVICES)
    assert len(services) == 1, f"operation tagged {names}: name exactly one service"
    return str(services.pop())


def operations_of(doc: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(service, action, topic, planned) for every operation."""
    out = []
    for operation in doc["operations"].values():
        channel = resolve(doc, operation["channel"])
        planned = any(resolve(doc, t)["name"] == "planned" for t in operation.get("tags", []))
        out.append((service_of(doc, operation), operation["action"], channel["address"], planned))
    return out


def test_the_document_is_asyncapi_3_with_the_embedded_and_production_servers(
    doc: dict[str, Any],
) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["defaultContentType"] == envelope.CONTENT_TYPE
    servers = doc["servers"]
    assert set(servers) == {"embedded", "production"}
    assert all(server["protocol"] == "kafka" for server in servers.values())
    assert servers["embedded"]["host"] == BaseServiceSettings().kafka_bootstrap_servers


def test_every_topic_is_documented_with_its_key_and_schema(doc: dict[str, Any]) -> None:
    by_address = channels_by_address(doc)
    for topic in topics.ALL:
        assert topic in by_address, f"{topic} has no channel"
        _, channel = by_address[topic]
        bindings = resolve(doc, channel["bindings"])["kafka"]
        assert bindings["partitions"] == topics.PARTITIONS
        assert bindings["replicas"] == BaseServiceSettings().replication_factor

        message = only_message(doc, channel)
        assert message["contentType"] == envelope.CONTENT_TYPE
        key = resolve(doc, resolve(doc, message["bindings"])["kafka"]["key"])
        assert key["type"] == "string"
        assert key["pattern"] == identifiers._USCC_SHAPE.pattern
        assert re.fullmatch(key["pattern"], factories.uscc())
        headers = resolve(doc, message["headers"])
        assert {"content-type", "traceparent"} <= set(headers["properties"])
        assert headers["properties"]["content-type"]["const"] == envelope.CONTENT_TYPE

        override = envelope_override(doc, message)
        assert override["data"] == {"$ref": f"./schemas/{topic}.json"}
        assert override["dataschema"]["const"] == envelope.SCHEMA_URI.format(topic=topic)


def test_every_dead_letter_twin_is_documented_with_the_headers_consumers_write(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(outbox, "add_raw", lambda _session, **kw: written.append(kw))
    record = consumer.Record(
        topic=topics.VEHICLE_REGISTERED, partition=3, offset=42, key=b"k", value=b"{not json"
    )
    applier = consumer.BatchApplier.__new__(consumer.BatchApplier)  # no engine needed here
    applier.subscription = consumer.Subscription("scoring-ledger")
    applier._dead_letter(None, record, "boom")  # type: ignore[arg-type]
    (dead,) = written
    assert dead["topic"] == topics.dlq(topics.VEHICLE_REGISTERED)
    assert dead["value"] == record.value
    dlq_headers = {name for name, _ in dead["headers"]}

    by_address = channels_by_address(doc)
    for topic in topics.ALL:
        assert topics.dlq(topic) in by_address, f"{topics.dlq(topic)} has no channel"
        _, channel = by_address[topics.dlq(topic)]
        assert resolve(doc, channel["bindings"])["kafka"]["partitions"] == topics.PARTITIONS
        message = only_message(doc, channel)
        headers = resolve(doc, message["headers"])
        assert set(headers["properties"]) == dlq_headers
        assert set(headers["required"]) == dlq_headers
        payload = resolve(doc, message["payload"])
        assert payload["type"] == "string" and payload["format"] == "binary"

    assert {address for address in by_address} == set(topics.all_with_dlq())


def test_every_channel_message_type_is_the_models_cloudevents_type(doc: dict[str, Any]) -> None:
    for address, (_, channel) in channels_by_address(doc).items():
        if address not in BY_TOPIC:
            continue
        model = BY_TOPIC[address]
        message = only_message(doc, channel)
        assert envelope_override(doc, message)["type"]["const"] == model.TYPE, address
        assert message["name"] == model.TYPE
        schema = json.loads((CONTRACTS / "schemas" / f"{address}.json").read_text())
        assert schema["x-cloudevents-type"] == model.TYPE


def test_every_local_ref_resolves_to_a_file_and_node_under_contracts(
    doc: dict[str, Any],
) -> None:
    pending: list[tuple[Path, Any]] = [(DOCUMENT, doc)]
    seen: set[Path] = set()
    checked = 0
    while pending:
        path, root = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for where, ref in refs(root):
            target, _, fragment = ref.partition("#")
            assert "://" not in target and not target.startswith("urn:"), f"remote $ref {ref}"
            file = (path.parent / target).resolve() if target else path
            assert file.is_relative_to(CONTRACTS), f"{path.name}{where}: {ref} leaves contracts/"
            assert file.is_file(), f"{path.name}{where}: {ref} names no file"
            content = load(file) if target else root
            try:
                pointer(content, fragment)
            except (KeyError, IndexError, ValueError, TypeError):
                pytest.fail(f"{path.name}{where}: {ref} points at nothing")
            if target:
                pending.append((file, content))
            checked += 1
    assert checked > 0
    assert {p.name for p in seen} >= {f"{t}.json" for t in topics.ALL} | {"cloudevent.json"}


def test_every_operation_references_an_existing_channel_and_its_messages(
    doc: dict[str, Any],
) -> None:
    assert doc["operations"]
    for name, operation in doc["operations"].items():
        assert operation["action"] in {"send", "receive"}, name
        ref = operation["channel"]["$ref"]
        assert ref.startswith("#/channels/"), name
        channel_id = ref.removeprefix("#/channels/")
        assert channel_id in doc["channels"], f"{name}: no channel {channel_id}"
        for message in operation.get("messages", []):
            assert message["$ref"].startswith(f"{ref}/messages/"), (
                f"{name}: message is not one of its channel's"
            )
            assert isinstance(resolve(doc, message), dict)


def test_each_topic_is_sent_by_exactly_its_designed_producer(doc: dict[str, Any]) -> None:
    sends = [
        (service, topic) for service, action, topic, _ in operations_of(doc) if action == "send"
    ]
    assert sorted(sends, key=lambda s: s[1]) == sorted(
        ((service, topic) for topic, service in PRODUCERS.items()), key=lambda s: s[1]
    )
    assert set(PRODUCERS) == set(topics.ALL)


@pytest.mark.parametrize("service", SERVICES)
def test_receive_operations_match_what_the_service_subscribes_to(
    doc: dict[str, Any], service: str
) -> None:
    """Code ⊆ documented; a documented receive the code lacks must be tagged ``planned``."""
    main = __import__(f"{service}.__main__", fromlist=["SPEC"])
    spec: ServiceSpec = main.SPEC
    settings = spec.settings()
    in_code = {t for s in spec.subscriptions(settings) for t in s.topics}
    receives = [
        (topic, planned)
        for owner, action, topic, planned in operations_of(doc)
        if owner == service and action == "receive"
    ]
    documented = {topic for topic, _ in receives}
    assert in_code <= documented, f"{service} reads {in_code - documented} undocumented"
    unplanned = {topic for topic, planned in receives if not planned}
    assert unplanned <= in_code, f"{service} documents {unplanned - in_code} it does not read"

    group = f"ucx-{settings.service_name}"
    for operation in doc["operations"].values():
        if operation["action"] == "receive" and service_of(doc, operation) == service:
            assert resolve(doc, operation["bindings"])["kafka"]["groupId"]["const"] == group


def test_documented_examples_are_events_the_code_accepts(doc: dict[str, Any]) -> None:
    examples = 0
    for message in doc["components"]["messages"].values():
        for example in message.get("examples", []):
            event = envelope.decode(json.dumps(example["payload"]).encode())
            model = BY_TYPE[event.type]
            model.model_validate(event.data)  # strict, as producers validate
            assert event.enterpriseid == event.data["enterprise_uscc"]
            assert example["headers"]["content-type"] == envelope.CONTENT_TYPE
            assert example["headers"]["traceparent"] == event.traceparent
            assert envelope_override(doc, message)["type"]["const"] == event.type
            examples += 1
    assert examples > 0
