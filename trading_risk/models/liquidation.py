"""Liquidations, auto-deleveraging events and the insurance fund ledger."""

__all__: list[str] = []
