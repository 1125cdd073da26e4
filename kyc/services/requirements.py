"""The KYC constructor: what each level of each track requires, changed through maker-checker.

A change to what verification a level needs is a control change, so one compliance officer proposes it
(`kyc.requirement.set`) and another approves it; only then is it applied and logged.
"""

from datetime import datetime

from django.db import IntegrityError, transaction

from backoffice import approvals, audit
from backoffice.errors import InvalidInput
from kyc.models import Requirement, Track

FIELDS = ("track", "level", "code", "kind", "label", "active")


def change_action() -> approvals.ChangeAction:
    """The maker-checker action that adds or changes a requirement (registered when the app is ready)."""
    return approvals.ChangeAction(
        code="kyc.requirement.set",
        label="Change a KYC requirement",
        request_permission="kyc.change_requirement",
        approve_permission="kyc.approve_requirement_change",
        validate=_validate,
        apply=_apply,
        describe=_describe,
    )


def _validate(payload: dict) -> dict:
    problems = []
    requirement_id = payload.get("requirement_id") or None
    if requirement_id is not None and not Requirement.objects.filter(pk=requirement_id).exists():
        problems.append({"field": "requirement_id", "message": "unknown"})
    clean = {
        "requirement_id": requirement_id,
        "track": str(payload.get("track") or ""),
        "level": payload.get("level"),
        "kind": str(payload.get("kind") or ""),
        "code": str(payload.get("code") or "").strip().upper()
        if payload.get("kind") != "FIELD"
        else str(payload.get("code") or "").strip(),
        "label": str(payload.get("label") or "").strip(),
        "active": bool(payload.get("active")),
    }
    if clean["track"] not in Track.values:
        problems.append({"field": "track", "message": "unknown"})
    if clean["kind"] not in Requirement.Kind.values:
        problems.append({"field": "kind", "message": "unknown"})
    if clean["level"] not in (1, 2, 3, "1", "2", "3"):
        problems.append({"field": "level", "message": "must be 1, 2 or 3"})
    if not clean["code"] or not clean["label"]:
        problems.append({"field": "code" if not clean["code"] else "label", "message": "required"})
    if problems:
        raise InvalidInput("The requirement is not valid.", details=problems)
    return clean | {"level": int(clean["level"])}


def _describe(payload: dict) -> str:
    state = "active" if payload["active"] else "inactive"
    verb = "Change" if payload["requirement_id"] else "Add"
    what = f"{payload['track']} L{payload['level']} {payload['kind']} {payload['code']}"
    return f"{verb} KYC requirement {what} ({state})"


def _apply(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    requirement = (
        Requirement.objects.select_for_update().get(pk=payload["requirement_id"])
        if payload["requirement_id"]
        else Requirement()
    )
    before = audit.snapshot(requirement, FIELDS) if requirement.pk else None
    for name in FIELDS:
        setattr(requirement, name, payload[name])
    requirement.updated_at = now
    try:
        with transaction.atomic():
            requirement.save()
    except IntegrityError:
        raise InvalidInput(
            "This track already has a requirement with that code.", details=[{"field": "code", "message": "duplicate"}]
        ) from None
    audit.record(
        actor=actor,
        action="kyc.requirement.set",
        target=requirement,
        now=now,
        before=before,
        after=audit.snapshot(requirement, FIELDS),
        reason=change_request.reason,
    )
    return {"requirement_id": requirement.pk}


def propose_requirement(*, payload: dict, reason: str, actor: audit.Actor, now: datetime):
    """Ask for a requirement to be added or changed; it applies when another officer approves."""
    return approvals.request_change(action="kyc.requirement.set", payload=payload, actor=actor, reason=reason, now=now)
