"""Outbound webhooks: which events go to which endpoint, when to try again, which URLs are
allowed. Pure rules; the I/O is in ``delivery.py`` and ``services.py``."""

from __future__ import annotations

import ipaddress
import random
import socket
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from contracts import events
from contracts.envelope import CloudEvent

OUTBOUND: tuple[type[events.EventData], ...] = (
    events.VehicleDeclared,
    events.VehicleExported,
    events.DepartureRefused,
    events.VehicleInspected,
    events.EnterpriseStatusChanged,
)
"""The events partners may receive as webhooks (the outbound subscription consumes these)."""

_DECLARED_AS = {outcome: f"declaration.{outcome}" for outcome in ("accepted", "rejected")}
"""``vehicle.declared`` goes out by its outcome; every other OUTBOUND event by its own type."""
_AS_THEMSELVES = frozenset(m.TYPE for m in OUTBOUND) - {events.VehicleDeclared.TYPE}
WEBHOOK_TYPES = (*_DECLARED_AS.values(), *sorted(_AS_THEMSELVES))
"""Every webhook ``type`` a subscription may ask for."""


def webhook_type(event: CloudEvent) -> str | None:
    """The webhook ``type`` partners subscribe to, for a CloudEvent we consume."""
    if event.type == events.VehicleDeclared.TYPE:
        return _DECLARED_AS.get(str(event.data.get("outcome")))
    return event.type if event.type in _AS_THEMSELVES else None


def next_attempt_at(
    schedule_s: tuple[float, ...],
    attempts_done: int,
    now: datetime,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try next after ``attempts_done`` attempts, or None when the schedule is spent.
    Waits are jittered by +-10 %; a ``Retry-After`` longer than the wait wins."""
    if attempts_done >= len(schedule_s):
        return None
    wait = schedule_s[attempts_done] * (1 + (rng or random).uniform(-0.1, 0.1))
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    return now + timedelta(seconds=wait)


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    if not header:
        return None
    if header.strip().isdigit():
        return float(header.strip())
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(header) - now).total_seconds())
    except (TypeError, ValueError):
        return None


class UrlRefused(ValueError):
    pass


def check_url(url: str, *, production: bool) -> str:
    """https in production (and never to private, loopback or link-local addresses, checked on
    what the host resolves to: SSRF); http only to loopback in development."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("webhook_url: an absolute http(s) URL")
    if parts.username or parts.password:
        raise UrlRefused("webhook_url: no credentials in the URL")
    addresses = _resolve(parts.hostname)
    if production:
        if parts.scheme != "https":
            raise UrlRefused("webhook_url: https only")
        for address in addresses:
            if not address.is_global:
                raise UrlRefused(f"webhook_url: resolves to a non-public address ({address})")
    elif parts.scheme == "http" and not all(a.is_loopback for a in addresses):
        raise UrlRefused("webhook_url: plain http only to loopback in development")
    return url


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise UrlRefused(f"webhook_url: {host} does not resolve") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
