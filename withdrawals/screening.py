"""The one place withdrawals call the KYC app: address screening and the KYC level gate.

Screening fails closed: if the destination cannot be screened (an unknown network for the lists, the
lists unreadable), the answer is "unavailable" and the withdrawal goes to a person, never through.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from accounts.models import Customer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Screening:
    result: str  # clear | listed | unavailable
    detail: dict

    def as_json(self) -> dict:
        return {"result": self.result, **self.detail}


def screen_address(*, network: str, address: str) -> Screening:
    """Whether the destination is on a sanctions or high-risk address list."""
    from kyc import selectors

    try:
        match = selectors.address_risk(network=network, address=address)
    except Exception as exc:  # an unknown chain or unreadable lists: a person must look
        logger.warning("address screening unavailable for %s: %s", network, exc)
        return Screening("unavailable", {"error": f"{type(exc).__name__}: {exc}"[:200]})
    if match is None:
        return Screening("clear", {})
    return Screening(
        "listed",
        {
            "source": match.source,
            "origin": match.origin,
            "listed_name": match.listed_name,
            "reason": match.reason,
            "chain": match.chain,
        },
    )


def meets_withdrawal_level(customer: Customer, *, at: datetime) -> bool:
    """Whether the customer's verified KYC level allows withdrawals at all."""
    from kyc import selectors

    return selectors.meets_level(customer, selectors.required_level("withdrawal", at=at))
