"""Writes to customers and accounts. Every change is in the operations log."""

from dataclasses import asdict, dataclass
from datetime import date, datetime

from django.db import transaction

from accounts import restrictions
from accounts.models import Account, Customer
from backoffice import audit
from backoffice.errors import DomainError, InvalidInput
from kyc import tasks as kyc_tasks

CUSTOMER_FIELDS = ("type", "name", "country", "email", "phone", "date_of_birth")
# A change to any of these screens the customer again against the sanctions and PEP lists.
SCREENED_FIELDS = ("type", "name", "country", "date_of_birth")


class AccountOwnerChange(DomainError):
    """An account cannot move to another customer."""

    code = "account_owner_change"


@dataclass(frozen=True)
class CustomerData:
    type: str
    name: str
    country: str
    email: str
    phone: str
    date_of_birth: date | None


@transaction.atomic
def upsert_customer(
    *, external_id: str, data: CustomerData, imported_kyc_level: int | None, actor: audit.Actor, now: datetime
) -> tuple[Customer, bool]:
    """Create or update a customer from the exchange; returns (customer, created). Unchanged data writes nothing.

    An imported KYC level (customers verified before the back office) only ever raises a level that was
    itself imported; a level decided in the back office is never overridden.
    """
    customer = Customer.objects.select_for_update(no_key=True).filter(external_id=external_id).first()
    if customer is None:
        customer = Customer(external_id=external_id, created_at=now, **asdict(data))
        before = None
    else:
        before = audit.snapshot(customer, CUSTOMER_FIELDS + ("kyc_level", "kyc_level_source"))
        for name, value in asdict(data).items():
            setattr(customer, name, value)
    _apply_imported_level(customer, imported_kyc_level)
    after = audit.snapshot(customer, CUSTOMER_FIELDS + ("kyc_level", "kyc_level_source"))
    if before == after:
        return customer, False
    customer.updated_at = now
    customer.save()
    action = "customer.create" if before is None else "customer.update"
    audit.record(
        actor=actor,
        action=action,
        target=customer,
        now=now,
        before=before,
        after=after,
        reason="KYC level imported from the exchange" if imported_kyc_level is not None else "",
    )
    if before is None or any(before[f] != after[f] for f in SCREENED_FIELDS):
        kyc_tasks.screen_customer.delay_on_commit(customer_id=customer.pk)
    return customer, before is None


def _apply_imported_level(customer: Customer, level: int | None) -> None:
    if level is None or customer.kyc_level_source == Customer.KycSource.DECIDED:
        return
    if level > customer.kyc_level or customer.kyc_level_source == Customer.KycSource.NONE:
        customer.kyc_level = max(level, customer.kyc_level)
        customer.kyc_level_source = Customer.KycSource.IMPORTED


@transaction.atomic
def upsert_account(
    *, external_id: str, customer_external_id: str, kind: str, actor: audit.Actor, now: datetime
) -> tuple[Account, bool]:
    """Create or update a trading account; returns (account, created). An account never changes owner."""
    customer = Customer.objects.filter(external_id=customer_external_id).first()
    if customer is None:
        raise InvalidInput(
            "Unknown customer; send it with PUT /customers/{customer_id} first.",
            details=[{"field": "customer_id", "message": "unknown customer"}],
        )
    account = Account.objects.select_for_update(no_key=True).filter(external_id=external_id).first()
    if account is None:
        account = Account.objects.create(
            external_id=external_id, customer=customer, kind=kind, created_at=now, updated_at=now
        )
        restrictions.publish_for_new_account(account, now=now)
        audit.record(
            actor=actor,
            action="account.create",
            target=account,
            now=now,
            after={"customer_id": customer_external_id, "kind": kind},
        )
        return account, True
    if account.customer_id != customer.pk:
        raise AccountOwnerChange(f"Account {external_id} belongs to another customer.")
    if account.kind != kind:
        before = {"kind": account.kind}
        account.kind, account.updated_at = kind, now
        account.save(update_fields=["kind", "updated_at"])
        audit.record(actor=actor, action="account.update", target=account, now=now, before=before, after={"kind": kind})
    return account, False
