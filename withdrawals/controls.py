"""Withdrawal controls through maker-checker: the incident switch to manual confirmation, suspending and
resuming an asset on a network, and network fee changes (large changes need a second approver).

Each is a ChangeAction: one person requests it, others approve it, and it applies in the approval's
transaction with its own operations-log entry.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from backoffice import approvals, audit
from backoffice.errors import InvalidInput
from backoffice.parameters import param
from withdrawals import services
from withdrawals.models import AssetNetwork, ManualConfirmation

REQUEST = "backoffice.request_change"
APPROVE = "withdrawals.approve_withdrawal_control"
DIRECTIONS = ("WITHDRAWALS", "DEPOSITS")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"field": field, "message": message}])


def _asset_network(payload: dict) -> AssetNetwork:
    found = AssetNetwork.objects.filter(
        asset=str(payload.get("asset", "")).upper(), network=str(payload.get("network", "")).upper()
    ).first()
    if found is None:
        raise _invalid("asset", "no such asset on that network")
    return found


# ---- the incident switch ---------------------------------------------------------------------------------
def _validate_switch(payload: dict) -> dict:
    on = payload.get("on")
    if not isinstance(on, bool):
        raise _invalid("on", "true to confirm every withdrawal by hand, false to return to automatic")
    active = ManualConfirmation.objects.filter(ended_at__isnull=True).exists()
    if on == active:
        raise _invalid("on", "manual confirmation is already " + ("on" if active else "off"))
    return {"on": on}


def _describe_switch(payload: dict) -> str:
    return "Confirm every withdrawal by hand" if payload["on"] else "Return withdrawals to automatic confirmation"


def _apply_switch(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    if payload["on"]:
        switch = ManualConfirmation.objects.create(
            reason=change_request.reason, started_at=now, change_request=change_request
        )
    else:
        switch = ManualConfirmation.objects.select_for_update(no_key=True).get(ended_at__isnull=True)
        switch.ended_at = now
        switch.save(update_fields=["ended_at"])
    audit.record(
        actor=actor,
        action="withdrawal.manual_confirmation",
        target=switch,
        now=now,
        reason=change_request.reason,
        after={"on": payload["on"]},
    )
    return {"switch_id": switch.pk}


# ---- suspension ------------------------------------------------------------------------------------------
def _validate_suspension(payload: dict) -> dict:
    asset_network = _asset_network(payload)
    direction = str(payload.get("direction", "")).upper()
    if direction not in DIRECTIONS:
        raise _invalid("direction", "WITHDRAWALS or DEPOSITS")
    suspend = payload.get("suspend")
    if not isinstance(suspend, bool):
        raise _invalid("suspend", "true to suspend, false to resume")
    if _suspended(asset_network, direction) == suspend:
        raise _invalid("suspend", f"{direction.lower()} are already {'suspended' if suspend else 'running'}")
    return {"asset": asset_network.asset, "network": asset_network.network, "direction": direction, "suspend": suspend}


def _suspended(asset_network: AssetNetwork, direction: str) -> bool:
    return asset_network.withdrawals_suspended if direction == "WITHDRAWALS" else asset_network.deposits_suspended


def _describe_suspension(payload: dict) -> str:
    verb = "Suspend" if payload["suspend"] else "Resume"
    return f"{verb} {payload['direction'].lower()} of {payload['asset']} on {payload['network']}"


def _apply_suspension(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    asset_network = AssetNetwork.objects.select_for_update(no_key=True).get(
        asset=payload["asset"], network=payload["network"]
    )
    field = "withdrawals_suspended" if payload["direction"] == "WITHDRAWALS" else "deposits_suspended"
    before = audit.snapshot(asset_network, (field, "suspension_reason"))
    setattr(asset_network, field, payload["suspend"])
    asset_network.suspension_reason = change_request.reason if payload["suspend"] else ""
    asset_network.save(update_fields=[field, "suspension_reason"])
    audit.record(
        actor=actor,
        action="asset.suspend" if payload["suspend"] else "asset.resume",
        target=asset_network,
        now=now,
        reason=change_request.reason,
        before=before,
        after=audit.snapshot(asset_network, (field, "suspension_reason")),
    )
    released = 0
    if field == "withdrawals_suspended" and not payload["suspend"]:
        released = services.release_suspension_holds(asset_network=asset_network, now=now)
    return {"asset_network_id": asset_network.pk, "released_to_review": released}


# ---- network fees ----------------------------------------------------------------------------------------
def _validate_fee(payload: dict) -> dict:
    asset_network = _asset_network(payload)
    try:
        fee = Decimal(str(payload.get("fee")))
    except InvalidOperation:
        raise _invalid("fee", "must be a number") from None
    if not fee.is_finite() or fee < 0 or -fee.normalize().as_tuple().exponent > asset_network.decimals:
        raise _invalid("fee", f"a non-negative amount with at most {asset_network.decimals} decimals")
    if fee == asset_network.network_fee:
        raise _invalid("fee", "this is the current fee")
    return {
        "asset": asset_network.asset,
        "network": asset_network.network,
        "fee": f"{fee.normalize():f}",
        "previous": f"{asset_network.network_fee.normalize():f}",
    }


def is_large_fee_change(payload: dict) -> bool:
    """A change by at least the configured share of the current fee (any change from zero counts)."""
    previous, fee = Decimal(payload["previous"]), Decimal(payload["fee"])
    if previous == 0:
        return True
    return abs(fee - previous) / previous * 100 >= param("withdrawal.fee_large_change_percent")


def _describe_fee(payload: dict) -> str:
    return f"Network fee of {payload['asset']} on {payload['network']}: {payload['previous']} → {payload['fee']}"


def _apply_fee(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    asset_network = AssetNetwork.objects.select_for_update(no_key=True).get(
        asset=payload["asset"], network=payload["network"]
    )
    before = asset_network.network_fee
    asset_network.network_fee = Decimal(payload["fee"])
    asset_network.save(update_fields=["network_fee"])
    audit.record(
        actor=actor,
        action="asset.network_fee",
        target=asset_network,
        now=now,
        reason=change_request.reason,
        before={"network_fee": before},
        after={"network_fee": asset_network.network_fee},
    )
    return {"asset_network_id": asset_network.pk, "network_fee": payload["fee"]}


def change_actions() -> list[approvals.ChangeAction]:
    """The maker-checker actions of this app (registered when the app is ready)."""
    common = {"request_permission": REQUEST, "approve_permission": APPROVE}
    return [
        approvals.ChangeAction(
            code="withdrawal.manual_confirmation",
            label="Switch withdrawals to manual confirmation",
            validate=_validate_switch,
            apply=_apply_switch,
            describe=_describe_switch,
            **common,
        ),
        approvals.ChangeAction(
            code="withdrawal.asset_suspension",
            label="Suspend or resume an asset on a network",
            validate=_validate_suspension,
            apply=_apply_suspension,
            describe=_describe_suspension,
            **common,
        ),
        approvals.ChangeAction(
            code="withdrawal.network_fee",
            label="Change a network fee",
            validate=_validate_fee,
            apply=_apply_fee,
            describe=_describe_fee,
            approvals_needed=lambda payload: 2 if is_large_fee_change(payload) else 1,
            **common,
        ),
    ]
