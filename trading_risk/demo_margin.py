"""Demo data: risk-limit tables, positions and balances, re-margined so every margin class has accounts."""
