"""The large-trader report (domain.md §3): every beneficial owner whose positions or assets reach the threshold.

A customer is the beneficial owner; its positions are aggregated across all of its accounts. The aggregated
position is the sum over products (base assets) of the absolute net position in the product's perpetual and
dated contracts, in BTC at the latest reference prices at or before `valued_at`; total assets are its balances
valued the same way. Reaching the threshold (inclusive) on either puts the customer in the report.

One row per customer and contract; a customer in the report by its assets alone gets one row without a
contract. Fields the back office does not hold are kept as columns, empty, and say so in their header.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from accounts.models import Account, Customer
from kyc.models import Document, KycCase
from trading_risk.models import BrokerMember, LinkedGroup
from trading_risk.selectors import BTC

NOT_HELD = "(not held by the back office)"
HEADERS = [
    "Report day",
    "Member name (broker members only)",
    "Member number (broker members only)",
    "Client name",
    "Client number",
    "Client type",
    "Contract code",
    "Long qty (all accounts)",
    "Short qty (all accounts)",
    "Net position (base units)",
    "Position (BTC)",
    "Aggregated position, all products (BTC)",
    "Margin (settlement currency)",
    "Available funds (BTC)",
    "Total assets (BTC)",
    "Spot holdings",
    "Accounts under common control",
    "Opening documents (KYC)",
    "Source of funds (KYC dossier, where recorded)",
    f"Daily statement {NOT_HELD}",
    f"Delivery intention {NOT_HELD}",
    f"Delivery quantity {NOT_HELD}",
    "Unvalued assets (no reference price)",
]

_POSITIONS = """
SELECT a.customer_id, i.symbol, i.base, p.side, p.qty, p.margin
FROM trading_risk_position p JOIN accounts_account a ON a.id = p.account_id
JOIN trading_risk_instrument i ON i.id = p.instrument_id
WHERE i.kind <> 'SPOT' AND p.qty > 0
ORDER BY a.customer_id, i.symbol
"""
_BALANCES = """
SELECT a.customer_id, b.asset, SUM(b.total), SUM(b.available)
FROM trading_risk_balance b JOIN accounts_account a ON a.id = b.account_id
WHERE b.total > 0 GROUP BY a.customer_id, b.asset ORDER BY a.customer_id, b.asset
"""
_PRICES = """
SELECT DISTINCT ON (asset) asset, usd FROM trading_risk_assetprice
WHERE asset = ANY(%s) AND at <= %s ORDER BY asset, at DESC
"""


@dataclass
class Contract:
    symbol: str
    base: str
    long: Decimal = Decimal(0)
    short: Decimal = Decimal(0)
    margin: Decimal = Decimal(0)

    @property
    def net(self) -> Decimal:
        return self.long - self.short


@dataclass
class Holder:
    """One beneficial owner's positions and balances, and their BTC values."""

    contracts: dict[str, Contract] = field(default_factory=dict)
    balances: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # asset → (total, available)
    position_btc: Decimal = Decimal(0)
    assets_btc: Decimal = Decimal(0)
    available_btc: Decimal = Decimal(0)
    unvalued: set[str] = field(default_factory=set)


def large_traders(*, valued_at: datetime, threshold_btc: Decimal) -> dict[int, Holder]:
    """customer id → Holder, for every customer at or over the threshold on positions or total assets."""
    holders: dict[int, Holder] = defaultdict(Holder)
    with connection.cursor() as cursor:
        cursor.execute(_POSITIONS)
        for customer_id, symbol, base, side, qty, margin in cursor.fetchall():
            contract = holders[customer_id].contracts.setdefault(symbol, Contract(symbol, base))
            if side == "LONG":
                contract.long += qty
            else:
                contract.short += qty
            contract.margin += margin
        cursor.execute(_BALANCES)
        for customer_id, asset, total, available in cursor.fetchall():
            holders[customer_id].balances[asset] = (total, available)
    rates = btc_rates(_assets(holders.values()), at=valued_at)
    for holder in holders.values():
        value(holder, rates)
    return {c: h for c, h in holders.items() if h.position_btc >= threshold_btc or h.assets_btc >= threshold_btc}


def _assets(holders) -> set[str]:
    return {BTC} | {c.base for h in holders for c in h.contracts.values()} | {a for h in holders for a in h.balances}


def btc_rates(assets: set[str], *, at: datetime) -> dict[str, Decimal]:
    """BTC per unit of each asset that has a reference price at or before `at` (BTC itself: 1)."""
    with connection.cursor() as cursor:
        cursor.execute(_PRICES, [sorted(assets | {BTC}), at])
        usd = dict(cursor.fetchall())
    usd["USD"] = Decimal(1)
    if BTC not in usd:
        return {BTC: Decimal(1)}
    return {asset: price / usd[BTC] for asset, price in usd.items()} | {BTC: Decimal(1)}


def value(holder: Holder, rates: dict[str, Decimal]) -> None:
    """Fill in the holder's BTC values: Σ over products of |net| × rate, and its balances × rate."""
    net_by_product: dict[str, Decimal] = defaultdict(Decimal)
    for contract in holder.contracts.values():
        net_by_product[contract.base] += contract.net
    for product, net in net_by_product.items():
        if product in rates:
            holder.position_btc += abs(net) * rates[product]
        elif net:
            holder.unvalued.add(product)
    for asset, (total, available) in holder.balances.items():
        if asset in rates:
            holder.assets_btc += total * rates[asset]
            holder.available_btc += available * rates[asset]
        else:
            holder.unvalued.add(asset)


def report_rows(*, day: date, valued_at: datetime, threshold_btc: Decimal) -> list[list]:
    """The report's rows (without the header), ordered by client number then contract."""
    holders = large_traders(valued_at=valued_at, threshold_btc=threshold_btc)
    rates = btc_rates(_assets(holders.values()), at=valued_at)
    customers = Customer.objects.in_bulk(list(holders))
    context = _customer_context(list(holders))
    rows = []
    for customer in sorted(customers.values(), key=lambda c: c.external_id):
        holder, extra = holders[customer.pk], context[customer.pk]
        common = [
            day.isoformat(),
            extra["member_name"],
            extra["member_number"],
            customer.name,
            customer.external_id,
            customer.get_type_display(),
        ]
        rest = [
            _btc(holder.available_btc),
            _btc(holder.assets_btc),
            "; ".join(f"{asset} {total.normalize():f}" for asset, (total, _) in sorted(holder.balances.items())),
            extra["accounts"],
            extra["documents"],
            extra["source_of_funds"],
            "",
            "",
            "",
            ", ".join(sorted(holder.unvalued)),
        ]
        contracts = sorted(holder.contracts.values(), key=lambda c: c.symbol) or [None]
        for contract in contracts:
            margin = _qty(contract.margin) if contract else None
            rows.append(common + _contract_cells(contract, rates) + [_btc(holder.position_btc), margin] + rest)
    return rows


def _contract_cells(contract: Contract | None, rates: dict[str, Decimal]) -> list:
    if contract is None:
        return ["", None, None, None, None]
    rate = rates.get(contract.base)
    position_btc = _btc(abs(contract.net) * rate) if rate is not None else None
    return [contract.symbol, _qty(contract.long), _qty(contract.short), _qty(contract.net), position_btc]


def _qty(amount: Decimal) -> Decimal:
    return amount.normalize() if amount else Decimal(0)


def _btc(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.00000001"))


def _customer_context(customer_ids: list[int]) -> dict[int, dict]:
    """Member, accounts under common control, KYC documents and source of funds, per customer."""
    context = {
        c: {"member_name": "", "member_number": "", "documents": "", "source_of_funds": ""} for c in customer_ids
    }
    for member in BrokerMember.objects.filter(customer_id__in=customer_ids).select_related("customer"):
        context[member.customer_id].update(member_name=member.customer.name, member_number=member.member_number)
    controlled = _common_control(customer_ids)
    for customer_id in customer_ids:
        context[customer_id]["accounts"] = ", ".join(sorted(controlled.get(customer_id, ())))
    documents: dict[int, set[str]] = defaultdict(set)
    for customer_id, doc_type in Document.objects.filter(case__customer_id__in=customer_ids).values_list(
        "case__customer_id", "document_type"
    ):
        documents[customer_id].add(doc_type)
    for customer_id, types in documents.items():
        context[customer_id]["documents"] = ", ".join(sorted(types))
    for customer_id, data in (
        KycCase.objects.filter(customer_id__in=customer_ids, status=KycCase.Status.APPROVED)
        .order_by("closed_at")
        .values_list("customer_id", "data")
    ):
        if isinstance(data, dict) and data.get("source_of_funds"):
            context[customer_id]["source_of_funds"] = str(data["source_of_funds"])
    return context


def _common_control(customer_ids: list[int]) -> dict[int, set[str]]:
    """The customer's own accounts and those of customers linked to it (same beneficial owner)."""
    linked: dict[int, set[int]] = {c: {c} for c in customer_ids}
    groups = LinkedGroup.objects.filter(customers__in=customer_ids).prefetch_related("customers").distinct()
    for group in groups:
        members = {c.pk for c in group.customers.all()}
        for customer_id in members & set(customer_ids):
            linked[customer_id] |= members
    owners = {c for ids in linked.values() for c in ids}
    accounts: dict[int, list[str]] = defaultdict(list)
    for customer_id, external_id in Account.objects.filter(customer_id__in=owners).values_list(
        "customer_id", "external_id"
    ):
        accounts[customer_id].append(external_id)
    return {c: {a for owner in ids for a in accounts[owner]} for c, ids in linked.items()}
