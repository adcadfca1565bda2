"""Topic provisioning with the kafka-python admin client; safe to run again and again."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from contracts import topics as contract_topics


def provision(
    bootstrap_servers: str,
    names: Iterable[str] | None = None,
    *,
    partitions: int = contract_topics.PARTITIONS,
    replication_factor: int = 1,
    timeout_ms: int = 10_000,
) -> list[str]:
    """Create the missing topics; returns the names it created."""
    wanted = list(names) if names is not None else contract_topics.all_with_dlq()
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="ucx-provision",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        created = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, partitions, replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another process won the race: that is the goal anyway
        return created
    finally:
        admin.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m servicekit.topics [--replication-factor N]``: the one-shot job that creates
    every topic and its .dlq before the services start (KAFKA_BOOTSTRAP_SERVERS)."""
    parser = argparse.ArgumentParser(prog="python -m servicekit.topics")
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=contract_topics.PARTITIONS)
    args = parser.parse_args(argv)
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    created = provision(
        servers, partitions=args.partitions, replication_factor=args.replication_factor
    )
    print(f"{len(created)} topics created on {servers}: {', '.join(created) or 'none missing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
