"""``python -m <service> api | relay [--replay-from T] | worker | migrate``."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI

from servicekit import logs, migrate, relay, relay_web
from servicekit.consumer import Subscription, Timer
from servicekit.db import make_engine
from servicekit.settings import BaseServiceSettings

Subscriptions = Callable[[BaseServiceSettings], Sequence[Subscription]]
Timers = Callable[[BaseServiceSettings], Sequence[Timer]]


@dataclass(frozen=True)
class ServiceSpec:
    """A service's parts, named by its package: ``services/<name>/src/<name>``, its Alembic
    migrations in ``services/<name>/migrations``."""

    name: str
    settings: Callable[[], BaseServiceSettings]
    create_app: Callable[[BaseServiceSettings], FastAPI]
    subscriptions: Subscriptions = field(default=lambda _s: ())
    timers: Timers = field(default=lambda _s: ())
    commands: Mapping[str, Callable[[Sequence[str]], int]] = field(default_factory=dict)
    """The service's own commands besides the processes, e.g. the registry's ``principals``."""

    @property
    def migrations(self) -> Path:
        package = importlib.util.find_spec(self.name)
        if package is None or not package.submodule_search_locations:
            raise LookupError(f"{self.name} is not an importable package")
        source = Path(next(iter(package.submodule_search_locations))).resolve()
        return source.parents[1] / "migrations"


def run(spec: ServiceSpec, module: str) -> None:
    """What every service's ``__main__`` does: when it runs as the program (``module`` is its
    ``__name__``), the process the command line names; imported, nothing."""
    if module == "__main__":
        sys.exit(main(spec))


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> int:
    args_given = list(sys.argv[1:] if argv is None else argv)
    if args_given and args_given[0] in spec.commands:
        return spec.commands[args_given[0]](args_given[1:])
    parser = argparse.ArgumentParser(prog=f"python -m {spec.name}")
    sub = parser.add_subparsers(dest="process", required=True)
    sub.add_parser("api", help="serve the HTTP API")
    relay_cmd = sub.add_parser("relay", help="publish the outbox to Kafka")
    relay_cmd.add_argument(
        "--replay-from",
        metavar="TIME|all",
        help="first mark outbox records created at or after TIME (ISO 8601) as unsent, "
        "e.g. to fill a fresh broker; 'all' replays everything",
    )
    replay_cmd = sub.add_parser(
        "replay", help="mark outbox records as unsent; the running relay publishes them again"
    )
    replay_cmd.add_argument("--from", dest="since", metavar="TIME|all", required=True)
    sub.add_parser("worker", help="consume Kafka topics (faust)")
    sub.add_parser("migrate", help="upgrade the database to the latest migration")
    args = parser.parse_args(argv)

    settings = spec.settings()
    logs.configure(spec.name, args.process, settings.log_level)
    if args.process == "migrate":
        migrate.upgrade(spec.migrations, settings.database_url)
        return 0
    if args.process == "api":
        return _api(spec, settings)
    if args.process == "relay":
        return _relay(settings, args.replay_from)
    if args.process == "replay":
        engine = make_engine(settings.database_url)
        count = relay.replay_from(engine, _since(args.since))
        engine.dispose()
        print(f"{count} outbox records marked for replay")
        return 0
    return _worker(spec, settings)


def _api(spec: ServiceSpec, settings: BaseServiceSettings) -> int:
    import uvicorn

    uvicorn.run(
        spec.create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )
    return 0


def _since(value: str) -> datetime | None:
    if value == "all":
        return None
    since = datetime.fromisoformat(value)
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def _relay(settings: BaseServiceSettings, replay: str | None) -> int:
    log = structlog.get_logger("servicekit.cli")
    engine = make_engine(settings.database_url)
    if replay:
        count = relay.replay_from(engine, _since(replay))
        log.info("outbox marked for replay", records=count, since=replay)
    worker = relay.Relay(settings, engine)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop())
    relay_web.serve(settings, engine, worker)
    log.info("relay started", web_port=settings.relay_web_port)
    worker.run()
    engine.dispose()
    return 0


def _worker(spec: ServiceSpec, settings: BaseServiceSettings) -> int:
    from faust.worker import Worker

    from servicekit.consumer import build_app
    from servicekit.worker_web import install

    engine = make_engine(settings.database_url)
    app = build_app(
        settings,
        engine,
        spec.subscriptions(settings),
        spec.timers(settings),
        rebuild=spec.subscriptions,
    )
    install(app, settings, engine)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker: Any = Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logs.dict_config(settings.log_level),
        quiet=True,
        redirect_stdouts=False,
        loop=loop,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run python -m <service>")
