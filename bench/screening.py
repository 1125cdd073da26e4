"""Name screening: accuracy on the yente fixtures, one onboarding screen, and a full re-screen.

Accuracy: the "untreated" UN positives are the list; their "treated" twins (typos, reordered tokens,
shifted dates) must be found (recall), and the synthetic negatives must not hit (false-positive rate),
at the default review threshold. The same negatives are also screened against the real OFAC lists, for
the false-positive rate a real list gives. Speed: one `screen_customer` (the service, database included)
with the OFAC SDN and consolidated lists loaded, and `rescreen_all` over 20,000 customers.
"""

import csv
import random
import time
from datetime import UTC, date, datetime
from pathlib import Path

from bench.harness import Context, Result, measured, percentile, scenario

NAME = "screening"
FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared/reference/screening-benchmark/yente-fixtures"
OFAC = Path(__file__).resolve().parent.parent.parent / "shared/reference/sanctions/ofac"
NEGATIVES = ("negatives_us.csv", "validation_report_negatives_global.csv", "validation_report_negatives_us.csv")
RESCREEN_CUSTOMERS = 20_000


@scenario(NAME, "Sanctions name screening: recall, false positives, onboarding latency, full re-screen")
def screening(ctx: Context) -> list[Result]:
    from backoffice.celery import app

    app.conf.task_always_eager = True  # the re-screen a list load enqueues runs here, not on a shared worker
    threshold = _default_threshold()
    results = _accuracy(ctx, threshold)
    _load_ofac()
    results += _onboarding(ctx)
    results += _rescreen(ctx)
    return results


def _default_threshold() -> float:
    from backoffice.parameters import param

    return float(param("kyc.name_match_threshold"))


# ---- accuracy ------------------------------------------------------------------------------------------
def _accuracy(ctx: Context, threshold: float) -> list[Result]:
    from kyc import matching

    listed = _rows("positives_un_untreated.csv")
    index = matching.NameIndex(
        matching.Listed(i, (r["full_name"],), _births(r), _countries(r)) for i, r in enumerate(listed)
    )
    treated = _rows("positives_un_treated.csv")
    found = sum(
        any(m.entry_id == i for m in index.screen(_subject(r), threshold=threshold)) for i, r in enumerate(treated)
    )
    negatives = [row for name in NEGATIVES for row in _rows(name)]
    if ctx.quick:
        negatives = negatives[:10_000]
    started = time.perf_counter()
    false_hits = sum(bool(index.screen(_subject(r), threshold=threshold)) for r in negatives)
    seconds = time.perf_counter() - started
    pairs = _cross_script_pairs()
    cross_found = sum(
        matching.name_score(matching.normalised(a), matching.normalised(b)) >= threshold for a, b in pairs
    )
    return [
        measured(NAME, "threshold (default)", threshold, "score"),
        measured(NAME, "cross-script pairs found (watchman)", cross_found / len(pairs), "ratio"),
        measured(NAME, "recall, treated UN positives", found / len(treated), "ratio", at_least=0.98),
        measured(NAME, "false-positive rate, negatives", false_hits / len(negatives), "ratio", at_most=0.01),
        measured(NAME, "negatives screened", len(negatives), "names"),
        measured(NAME, "in-memory screens", len(negatives) / seconds, "names/s"),
    ]


def _rows(name: str) -> list[dict]:
    with (FIXTURES / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _cross_script_pairs() -> list[tuple[str, str]]:
    path = FIXTURES.parent / "watchman/cross_script_pairs.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row[0], row[1]) for row in csv.reader(handle) if len(row) >= 2 and not row[0].startswith("#")]


def _births(row: dict) -> tuple[str, ...]:
    return (row["date_of_birth"],) if row["date_of_birth"] else ()


def _countries(row: dict) -> tuple[str, ...]:
    return (row["nationality"].upper(),) if len(row["nationality"]) == 2 else ()


def _subject(row: dict):
    from kyc import matching

    country = row["nationality"].upper() if len(row["nationality"]) == 2 else ""
    return matching.Subject(row["full_name"], _date(row["date_of_birth"]), country)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None  # a year alone, or a treated date such as 1969-7-16


# ---- speed against the real lists ----------------------------------------------------------------------
def _load_ofac() -> None:
    from backoffice import audit
    from kyc import services

    actor, now = audit.Actor.system("bench"), datetime.now(UTC)
    services.load_ofac_list(
        source="OFAC_SDN",
        primary=OFAC / "sdn-2024-05-03/sdn.csv",
        comments=OFAC / "sdn-comments-2025-02/sdn_comments.csv",
        actor=actor,
        now=now,
    )
    folder = OFAC / "consolidated-nonsdn-2025-12"
    services.load_ofac_list(
        source="OFAC_CONSOLIDATED",
        primary=folder / "cons_prim.csv",
        alt=folder / "cons_alt.csv",
        comments=folder / "cons_comments.csv",
        actor=actor,
        now=now,
    )


def _onboarding(ctx: Context) -> list[Result]:
    from backoffice import audit
    from kyc import matching, selectors, services

    index, threshold = selectors.screening_index(), _default_threshold()  # built once; screens reuse it
    customers = _make_customers(ctx, 200 if ctx.quick else 1000, prefix="onboard")
    actor = audit.Actor.system("bench")
    seconds = []
    for customer in customers:
        started = time.perf_counter()
        services.screen_customer(customer=customer, actor=actor, now=datetime.now(UTC))
        seconds.append(time.perf_counter() - started)
    negatives = _rows("negatives_us.csv")[: 10_000 if ctx.quick else 50_000]
    with_birth = sum(bool(index.screen(_subject(r), threshold=threshold)) for r in negatives)
    # Without a date of birth the name alone decides: what a customer record lacking one would see.
    name_only = sum(bool(index.screen(matching.Subject(r["full_name"]), threshold=threshold)) for r in negatives)
    return [
        measured(NAME, "onboarding screen p50", 1000 * percentile(seconds, 50), "ms", at_most=5),
        measured(NAME, "onboarding screen p99", 1000 * percentile(seconds, 99), "ms"),
        measured(NAME, "OFAC SDN+consolidated names indexed", len(index.texts), "names"),
        measured(NAME, "false-positive rate, US negatives vs OFAC", with_birth / len(negatives), "ratio"),
        measured(NAME, "same, name only (no date of birth)", name_only / len(negatives), "ratio"),
        measured(NAME, "recall, OFAC persons with one typo (synthetic)", _typo_recall(index, threshold), "ratio"),
    ]


def _typo_recall(index, threshold: float, *, sample: int = 2000) -> float:
    """Listed persons' names with one typo (swap, drop or replace a letter) in one token, tokens shuffled."""
    from kyc import matching

    rnd = random.Random(7)
    people = sorted(e.entry_id for e in index.entries.values() if e.is_person)
    chosen = rnd.sample(people, min(sample, len(people)))
    found = 0
    for entry_id in chosen:
        query = _with_typo(index.entries[entry_id].names[0], rnd)
        found += any(m.entry_id == entry_id for m in index.screen(matching.Subject(query), threshold=threshold))
    return found / len(chosen)


def _with_typo(name: str, rnd: random.Random) -> str:
    words = name.split()
    i = rnd.randrange(len(words))
    word = words[i]
    if len(word) > 3:
        k = rnd.randrange(len(word) - 1)
        words[i] = rnd.choice(
            [word[:k] + word[k + 1] + word[k] + word[k + 2 :], word[:k] + word[k + 1 :], word[:k] + "x" + word[k + 1 :]]
        )
    rnd.shuffle(words)
    return " ".join(words)


def _rescreen(ctx: Context) -> list[Result]:
    from backoffice import audit
    from kyc import services

    _make_customers(ctx, RESCREEN_CUSTOMERS - (200 if ctx.quick else 1000), prefix="rescreen")
    started = time.perf_counter()
    summary = services.rescreen_all(actor=audit.Actor.system("bench"), now=datetime.now(UTC))
    seconds = time.perf_counter() - started
    return [
        measured(NAME, "full re-screen customers", summary["customers"], "customers"),
        measured(NAME, "full re-screen", seconds, "s", at_most=10),
        measured(NAME, "full re-screen hits opened", summary["opened"], "hits"),
    ]


def _make_customers(ctx: Context, count: int, *, prefix: str):
    """Customers named after the US negatives (people who are on no list), one in 500 a listed name."""
    from accounts.models import Customer

    names = _rows("negatives_us.csv")
    listed = ["Xiaobing YAN", "Ali KHORASHADIZADEH", "Vladimir Vladimirovich PUTIN"]
    now = datetime.now(UTC)
    customers = [
        Customer(
            external_id=f"{prefix}-{ctx.run_tag}-{n}",
            type=Customer.Type.INDIVIDUAL,
            name=listed[n % 3] if n % 500 == 0 else names[n % len(names)]["full_name"],
            country="US",
            email=f"{prefix}{n}@example.com",
            phone="+1 555 0100",
            date_of_birth=_date(names[n % len(names)]["date_of_birth"]),
            created_at=now,
            updated_at=now,
        )
        for n in range(count)
    ]
    return Customer.objects.bulk_create(customers, batch_size=5000)
