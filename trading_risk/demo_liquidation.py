"""Demo data: liquidations, auto-deleveraging and the insurance fund ledger."""
