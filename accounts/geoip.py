"""Which country an IP is in, from ranges loaded out of a geolocation CSV (e.g. a GeoLite2 or DB-IP
country export). IPs with no range are of unknown country, and the country rule then stays silent."""

import csv
import functools
import ipaddress
import time
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import IpCountryRange
from backoffice import audit
from backoffice.errors import InvalidInput


def ip_number(ip: str) -> Decimal:
    """An IP as one number; IPv4 maps into ::ffff:0:0/96 so both families share one ordering."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        address = ipaddress.IPv6Address(f"::ffff:{address}")
    return Decimal(int(address))


def country_of(ip: str) -> str:
    """The ISO country code of the range holding `ip`, or '' if none does (cached for a minute: ranges
    change only when a new file is loaded)."""
    return _cached_country(ip, int(time.monotonic() // 60))


@functools.lru_cache(maxsize=65536)
def _cached_country(ip: str, minute: int) -> str:
    n = ip_number(ip)
    row = IpCountryRange.objects.filter(first__lte=n).order_by("-first").values_list("last", "country").first()
    return row[1] if row and row[0] >= n else ""


def parse_rows(lines) -> list[tuple[Decimal, Decimal, str]]:
    """Rows of `network,country` (CIDR) or `first_ip,last_ip,country`; a header line is skipped."""
    ranges = []
    for line_no, row in enumerate(csv.reader(lines), start=1):
        if not row or row[0].startswith("#") or (line_no == 1 and not row[0][:1].isdigit() and ":" not in row[0]):
            continue
        try:
            ranges.append(_parse(row))
        except ValueError as exc:
            raise InvalidInput(f"line {line_no}: {exc}") from None
    return ranges


def _parse(row: list[str]) -> tuple[Decimal, Decimal, str]:
    if len(row) == 2:
        network = ipaddress.ip_network(row[0].strip(), strict=False)
        first, last, country = str(network.network_address), str(network.broadcast_address), row[1]
    elif len(row) >= 3:
        first, last, country = row[0].strip(), row[1].strip(), row[2]
    else:
        raise ValueError("expected network,country or first,last,country")
    country = country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValueError(f"{country!r} is not a two-letter country code")
    low, high = ip_number(first), ip_number(last)
    if high < low:
        raise ValueError("the range ends before it starts")
    return low, high, country


@transaction.atomic
def replace_ranges(
    *, ranges: list[tuple[Decimal, Decimal, str]], source: str, actor: audit.Actor, now: datetime
) -> int:
    """Swap in a whole new set of ranges (all or nothing)."""
    before = IpCountryRange.objects.count()
    IpCountryRange.objects.all().delete()
    IpCountryRange.objects.bulk_create(
        [IpCountryRange(first=a, last=b, country=c) for a, b, c in ranges], batch_size=5000
    )
    _cached_country.cache_clear()
    transaction.on_commit(_cached_country.cache_clear)
    audit.record(
        actor=actor,
        action="ip_countries.load",
        target=("accounts.ipcountryrange", source),
        now=now,
        before={"ranges": before},
        after={"ranges": len(ranges), "source": source},
    )
    return len(ranges)
