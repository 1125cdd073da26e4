"""The custodian that sends coins from hot wallets: one small interface, a local backend that works.

Every instruction carries an idempotency key derived from the withdrawal's primary key, so a custodian
that receives the same instruction twice (a retried task, a redelivered message) sends the coins once.
The backend is chosen by settings.WITHDRAWAL_CUSTODY_BACKEND (dotted path); the default keeps the
instructions in the Payout table and, if WITHDRAWAL_CUSTODY_FILE is set, appends them to a JSON-lines
file that an operator or a signing service picks up.
"""

import json
from datetime import datetime

from django.conf import settings
from django.utils.module_loading import import_string

from withdrawals.models import Payout, Withdrawal


def idempotency_key(withdrawal: Withdrawal) -> str:
    return f"withdrawal-{withdrawal.pk}"


class LocalCustody:
    """Records the instruction locally; the custodian reference is the idempotency key itself."""

    def send(self, *, key: str, asset: str, network: str, address: str, amount: str) -> str:
        path = getattr(settings, "WITHDRAWAL_CUSTODY_FILE", "")
        if path:
            line = {"idempotency_key": key, "asset": asset, "network": network, "address": address, "amount": amount}
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        return key


def backend():
    path = getattr(settings, "WITHDRAWAL_CUSTODY_BACKEND", "withdrawals.custody.LocalCustody")
    return import_string(path)()


def submit(payout: Payout, *, now: datetime) -> None:
    """Hand a claimed payout to the custodian, then mark it submitted (once)."""
    w = payout.withdrawal
    ref = backend().send(
        key=payout.idempotency_key,
        asset=w.asset_network.asset,
        network=w.asset_network.network,
        address=w.address,
        amount=f"{w.amount.normalize():f}",
    )
    Payout.objects.filter(pk=payout.pk, status=Payout.Status.QUEUED).update(
        status=Payout.Status.SUBMITTED, submitted_at=now, custodian_ref=ref[:100]
    )
