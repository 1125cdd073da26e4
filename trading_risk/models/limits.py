"""Position limits, hedging exemptions and broker-member limits."""

__all__: list[str] = []
