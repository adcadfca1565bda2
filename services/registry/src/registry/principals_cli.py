"""``python -m registry principals create --role ministry --name "..."``: the first principal
(or any, from the registry's host), written straight to the registry's database with its
audit row. Prints the principal's id and its token (shown once) as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.orm import Session

from registry import principals
from registry.settings import Settings
from servicekit import audit
from servicekit.clock import clock
from servicekit.db import make_engine
from servicekit.problems import Problem
from servicekit.roles import ROLES, Principal

CLI = Principal(
    id="cli", name="python -m registry principals", role="ministry", source="admin-token"
)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m registry principals")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a principal and print its token")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--province", help="6-digit province code (role province only)")
    args = parser.parse_args(argv)
    settings = Settings()
    engine = make_engine(settings.database_url)
    act = audit.Act(CLI, "registry.principal.create", "CLI", "/v1/principals", write=True)
    try:
        with audit.watch(Session(engine), lambda: act) as session, session.begin():
            issued = principals.create(
                session,
                name=args.name,
                role=args.role,
                province=args.province,
                created_by=CLI.id,
                now=clock.now(),
                lifetime=timedelta(days=settings.principal_token_days),
            )
            out = {
                "id": issued.principal.id,
                "name": issued.principal.name,
                "role": issued.principal.role,
                "province": issued.principal.province,
                "token": issued.token,
                "expires_at": issued.token_row.expires_at.isoformat(),
            }
    except Problem as exc:
        print(f"refused: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(json.dumps(out))
    return 0
