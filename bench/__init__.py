"""Benchmarks of the back office over real HTTP: `python -m bench [--scenario NAME] [--quick]`."""
