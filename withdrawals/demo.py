"""Demo: the exchange's wallets and a day of withdrawal requests, decided by the withdrawal rules.

Hot, warm and cold wallets for each main asset with targets, maximums and balances (the BTC hot
wallet below its target, so the wallet dashboard has an open alert), then about fifty requests through
`request_withdrawal`: most small and approved at once, a few large ones held, some waiting for review
(travel-rule data missing, a dormant account), some rejected (password changed within a day) and, when
the KYC demo loaded a sanctioned-address list, one frozen because its destination is on it.
"""

import random
from datetime import datetime, timedelta
from decimal import Decimal

import base58

from accounts.models import Account, Customer, User
from backoffice import audit, demo, health
from kyc import selectors as kyc_selectors
from kyc.models import SanctionedAddress
from withdrawals import addresses, screening, selectors, services, wallets
from withdrawals.models import Wallet, Withdrawal

ACTOR = audit.Actor.system("load_demo")
PREFIX = "demo-w-"
# asset, network, (hot target, hot max, warm target, warm max, cold target, cold max) in the asset
WALLETS = (
    ("BTC", "BTC", ("40", "80", "400", "800", "4000", "10000")),
    ("ETH", "ETH", ("600", "1200", "6000", "12000", "60000", "150000")),
    ("USDT", "ETH", ("2000000", "4000000", "20000000", "40000000", "100000000", "300000000")),
    ("USDT", "TRX", ("3000000", "6000000", "30000000", "60000000", "100000000", "300000000")),
)
# Small approved requests: asset, network, amount range (well under the travel-rule line of 1,000 USD).
SMALL = (
    ("BTC", "BTC", ("0.0005", "0.008")),
    ("ETH", "ETH", ("0.01", "0.25")),
    ("USDT", "ETH", ("20", "900")),
    ("USDT", "TRX", ("10", "900")),
)
APPROVED = 36
CANDIDATE_CUSTOMERS = 400  # the requests come from the first customers (the ones with recent logins)


@demo.section("withdrawals")
def build_withdrawals(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    if Withdrawal.objects.filter(request_id__startswith=PREFIX).exists():
        return "already there (demo withdrawals exist)"
    admin = User.objects.filter(username="admin").first()
    if admin is None or not Customer.objects.exists():
        return "skipped (needs the demo staff and customers)"
    wallet_line = _wallets(rng, audit.Actor.staff(admin), now)
    # Decisions fail closed without a live worker; the demo stands in for its heartbeat.
    health.record_heartbeat(now=now)
    made = _requests(rng, now)
    counts = {status: sum(1 for w in made if w.status == status) for status in Withdrawal.Status.values}
    statuses = ", ".join(f"{n} {status.lower()}" for status, n in counts.items() if n)
    return f"{wallet_line}; {len(made)} withdrawals ({statuses})"


# ---- wallets ----------------------------------------------------------------------------------------------
def _wallets(rng: random.Random, actor: audit.Actor, now: datetime) -> str:
    if Wallet.objects.exists():
        return "wallets existed"
    balances = []
    for asset, network, limits in WALLETS:
        asset_network = selectors.asset_network(asset, network)
        for n, tier in enumerate(("HOT", "WARM", "COLD")):
            target, maximum = Decimal(limits[2 * n]), Decimal(limits[2 * n + 1])
            name = f"{asset.lower()}-{network.lower()}-{tier.lower()}"
            wallets.register_wallet(
                name=name,
                asset_network=asset_network,
                tier=tier,
                address=_address(rng, network),
                target_balance=target,
                max_balance=maximum,
                actor=actor,
                now=now,
            )
            # Between target and maximum, except the BTC hot wallet, drained below its target.
            low = tier == "HOT" and asset == "BTC"
            share = Decimal(rng.uniform(0.3, 0.7) if low else rng.uniform(1.05, 1.6))
            level = min(target * share, maximum)
            for hours_ago in (24, 12, 1):
                drift = Decimal(1 + rng.uniform(-0.03, 0.03)) if hours_ago > 1 else Decimal(1)
                balance = (level * drift).quantize(Decimal("0.00000001"))
                balances.append(wallets.BalanceIn(wallet=name, balance=balance, at=now - timedelta(hours=hours_ago)))
    wallets.record_balances(items=balances, actor=actor, now=now)
    return f"{3 * len(WALLETS)} wallets (btc-btc-hot below target), {len(balances)} balance snapshots"


def _address(rng: random.Random, network: str) -> str:
    body = rng.randbytes(20)
    if network == "BTC":
        return addresses.segwit_encode("bc", 0, body)
    if network == "ETH":
        return addresses.eip55("0x" + body.hex())
    if network == "TRX":
        return base58.b58encode_check(b"\x41" + body).decode()
    raise ValueError(network)


# ---- requests ---------------------------------------------------------------------------------------------
def _requests(rng: random.Random, now: datetime) -> list[Withdrawal]:
    accounts = [a for a in _spot_accounts() if _clean(a, now)]
    active = [a for a in accounts if not _password_changed(a.customer, now)]
    level = {n: [a for a in active if a.customer.kyc_level == n] for n in (1, 2, 3)}
    plan = []  # (account, asset, network, amount, address[, requested_at])
    for _ in range(APPROVED):
        asset, network, (low, high) = rng.choice(SMALL)
        account = rng.choice(level[2] + level[3] or active)
        plan.append((account, asset, network, _amount(rng, low, high), _address(rng, network)))
    for account in rng.sample(level[3], min(3, len(level[3]))):  # above the large-withdrawal line: held
        plan.append((account, "BTC", "BTC", Decimal(rng.randint(1100, 1500)), _address(rng, "BTC")))
    for account in rng.sample(level[2], min(4, len(level[2]))):  # 1,000 USD or more without IVMS101 data
        plan.append((account, "USDT", "TRX", Decimal(rng.randint(1500, 9000)), _address(rng, "TRX")))
    for account in _dormant_accounts(now, limit=2):  # no login for months, more than 1 BTC: reviewed
        plan.append((account, "BTC", "BTC", Decimal("1.5"), _address(rng, "BTC")))
    changed = [a for a in accounts if _password_changed(a.customer, now)]
    for account in changed[:3]:  # password changed within the lock period: rejected
        at = account.customer.password_changed_at + timedelta(minutes=rng.randint(1, 4))
        plan.append((account, "ETH", "ETH", _amount(rng, "0.05", "0.2"), _address(rng, "ETH"), at))
    if (listed := _listed_address()) is not None and active:  # destination on a sanctions list: frozen
        network, address = listed
        amount = Decimal("0.005") if network == "BTC" else Decimal("0.1")
        plan.append((rng.choice(level[2] or active), network, network, amount, address))
    rng.shuffle(plan)

    made = []
    start = now - timedelta(hours=20)
    for n, (account, asset, network, amount, address, *at) in enumerate(plan):
        request = services.WithdrawalRequest(
            request_id=f"{PREFIX}{n + 1:04d}",
            account_id=account.external_id,
            asset=asset,
            network=network,
            amount=amount,
            address=address,
            requested_at=at[0] if at else start + timedelta(minutes=20 * n, seconds=rng.randrange(60)),
        )
        withdrawal, _ = services.request_withdrawal(request=request, actor=ACTOR, now=now)
        made.append(withdrawal)
    return made


def _spot_accounts() -> list[Account]:
    return list(
        Account.objects.filter(
            kind=Account.Kind.SPOT,
            customer__kyc_level__gte=1,
            customer__in=Customer.objects.order_by("pk")[:CANDIDATE_CUSTOMERS],
        )
        .select_related("customer")
        .order_by("pk")
    )


def _clean(account: Account, now: datetime) -> bool:
    """No lock or restriction standing in the way, and a KYC level that allows withdrawing."""
    return screening.meets_withdrawal_level(account.customer, at=now) and not selectors.blocking_restriction_codes(
        account, now=now
    )


def _password_changed(customer: Customer, now: datetime) -> bool:
    changed = customer.password_changed_at
    return changed is not None and now - timedelta(hours=23) <= changed <= now - timedelta(minutes=5)


def _dormant_accounts(now: datetime, *, limit: int) -> list[Account]:
    found = []
    candidates = Account.objects.filter(kind=Account.Kind.SPOT, customer__kyc_level=2).select_related("customer")
    for account in candidates.order_by("-pk")[:200]:  # the newest customers, past the ones with logins
        last = selectors.last_activity_at(account, before=now - timedelta(days=1))
        if (last is None or now - last > timedelta(days=200)) and _clean(account, now):
            found.append(account)
            if len(found) == limit:
                break
    return found


def _amount(rng: random.Random, low: str, high: str) -> Decimal:
    low_, high_ = Decimal(low), Decimal(high)
    places = Decimal("0.0001") if high_ < 1 else Decimal("0.01")
    return (low_ + (high_ - low_) * Decimal(rng.random())).quantize(places)


def _listed_address() -> tuple[str, str] | None:
    """A BTC or Ethereum destination on the loaded sanctioned-address lists, if there is one."""
    for chain, network in (("BTC", "BTC"), ("EVM", "ETH")):
        listed = SanctionedAddress.objects.filter(chain=chain, removed_at__isnull=True).order_by("pk")
        for address in listed.values_list("address", flat=True)[:20]:
            try:
                address = addresses.validate(network, address)
                if kyc_selectors.address_risk(network=network, address=address) is not None:
                    return network, address
            except addresses.InvalidAddress:
                continue
    return None
