"""Run the benchmarks: `python -m bench [--scenario NAME ...] [--quick] [--check] [--list]`.

Every module in bench/ is imported, so a scenario registers itself with `@scenario` wherever it is
defined. The results are printed as a table and kept as JSON in bench/results/.
"""

import argparse
import importlib
import json
import pkgutil
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import bench
from bench import harness

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    for module in pkgutil.iter_modules(bench.__path__):
        if module.name not in ("harness", "__main__"):
            importlib.import_module(f"bench.{module.name}")
    args = _arguments(argv)
    if args.list:
        for item in harness.SCENARIOS.values():
            print(f"{item.name}: {item.description}")
        return 0
    chosen = args.scenario or list(harness.SCENARIOS)
    if unknown := [name for name in chosen if name not in harness.SCENARIOS]:
        print(f"unknown scenario(s): {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    results = _run(chosen, quick=args.quick)
    print(harness.format_table(results), flush=True)
    _save(results, quick=args.quick)
    missed = [r for r in results if r.met is False]
    return 1 if args.check and missed else 0


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a check in under 30 s")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a goal is missed")
    return parser.parse_args(argv)


def _run(names: list[str], *, quick: bool) -> list[harness.Result]:
    database_url = harness.bench_database_url()
    harness.prepare_database(database_url)
    results = []
    with harness.serve(database_url) as base_url:
        for name in names:
            context = harness.Context(base_url=base_url, quick=quick, run_tag=f"{time.time_ns():x}")
            started = time.perf_counter()
            results += harness.SCENARIOS[name].run(context)
            print(f"{name}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return results


def _save(results: list[harness.Result], *, quick: bool) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}{'-quick' if quick else ''}.json"
    path.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
