"""Demo: the KYC and sanctions workload a compliance officer finds on a working day.

Ten days ago the real OFAC lists were loaded (the SDN list, the consolidated non-SDN list and the
sanctioned crypto-address lists) and every customer was screened: common names give a few genuine
false positives. Since then:

- a handful of customers turned out to carry names close to real SDN entries — another transliteration,
  the surname first, a typo, a dropped middle name — so their open hits wait in the queue with their
  scores, and they are restricted (`sanctions_hit`) until compliance decides;
- a namesake of a listed person (same name, another date of birth and country) was resolved as a false
  match, which screening remembers, and their case was then approved;
- a few dozen customers applied for a KYC level: cases open with material missing, awaiting the first
  review (the trading desk), awaiting the second review (compliance: individual levels 2 and 3,
  corporates, a market maker's periodic review), sent back to the customer (one came back with a new
  document and is in the queue again), approved with signed decisions, and rejected with reasons.
  Some are assigned to `desk`, `compliance` or `admin`; some are past their SLA.

Every step goes through the kyc and accounts services at the time it happened, in time order, so the
operations log tells the same story. The first reviewer is a demo user `desk` in the trading desk role
(password and second factor as the other demo staff). Documents are small generated PDFs and PNGs.

The lists come from the folder in the setting `KYC_DEMO_SANCTIONS_DIR` when it is set ("" skips the
lists), otherwise from `<project>/../shared/reference/sanctions`. The folder is laid out like that
reference data: `ofac/sdn-*/sdn.csv`, `ofac/sdn-comments-*/sdn_comments.csv`,
`ofac/consolidated-*/cons_{prim,alt,comments}.csv`, `crypto-addresses/*/sanctioned_addresses_*.txt` and
`crypto-addresses/*/*.csv` (the newest folder of each kind is used). Tests point it at a tiny list.
Without the folder the lists are skipped, and so are the planted hits; the cases are planted all the same.
Nothing is planted when KYC cases exist already.
"""

import random
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from anyascii import anyascii
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import services as accounts_services
from accounts.models import Customer, User
from backoffice import audit, demo, parameters
from kyc import matching, ofac, selectors, services
from kyc.models import Decision, KycCase, ListEntry, Requirement, ScreeningHit, Track

ACTOR = audit.Actor.system("load_demo")
SANCTIONS_SETTING = "KYC_DEMO_SANCTIONS_DIR"
DESK_USER = ("desk", "Dana", "Whitfield", "trading desk")
LISTS_LOADED_AGO = timedelta(days=10)
FULL_LOAD = 3000  # customers for which every scenario below is planted in full; smaller loads plant fewer
APPROVE, REJECT, SEND_BACK = Decision.Outcome.APPROVE, Decision.Outcome.REJECT, Decision.Outcome.SEND_BACK
H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@demo.section("kyc")
def build_kyc(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    if KycCase.objects.exists():
        return "already there (KYC cases exist)"
    customers = list(Customer.objects.order_by("external_id"))
    if len(customers) < 20:
        return "skipped (needs at least 20 customers)"
    desk, created = _desk_user(now)
    plan = _Plan(rng, now, desk, scale=min(1.0, len(customers) / FULL_LOAD))
    lists = _load_lists(sanctions_dir(), now=now - LISTS_LOADED_AGO)
    if lists.loaded:
        services.rescreen_all(actor=ACTOR, now=now - LISTS_LOADED_AGO + 5 * MINUTE)
    plan.choose_customers(customers)
    planted = _plant_lookalikes(plan) if lists.loaded else []
    _plan_cases(plan)
    plan.timeline.run()
    return _summary(lists, planted, desk_created=created, now=now)


def sanctions_dir() -> Path | None:
    """The reference folder the lists are read from (setting KYC_DEMO_SANCTIONS_DIR; "" or None: none)."""
    configured = getattr(settings, SANCTIONS_SETTING, ...)
    if configured is ...:
        return Path(settings.BASE_DIR).parent / "shared" / "reference" / "sanctions"
    return Path(configured) if configured else None


# ---- staff -------------------------------------------------------------------------------------------
def _desk_user(now: datetime) -> tuple[User, bool]:
    username, first, last, role = DESK_USER
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, False
    # Created like the other demo staff: shared demo password, enrolled in TOTP, in the operations log.
    return demo._create_staff(username, first, last, role, password=make_password(demo.DEMO_PASSWORD), now=now), True


# ---- lists -------------------------------------------------------------------------------------------
@dataclass
class _Lists:
    folder: Path | None
    loaded: list[str] = field(default_factory=list)  # "OFAC_SDN 14,965 entries"
    problems: list[str] = field(default_factory=list)


def _load_lists(folder: Path | None, *, now: datetime) -> _Lists:
    lists = _Lists(folder)
    if folder is None or not folder.is_dir():
        return lists
    ofac_dir, addresses_dir = folder / "ofac", folder / "crypto-addresses"
    sdn = _newest(ofac_dir.glob("sdn-*/sdn.csv"))
    if sdn:
        comments = _newest(ofac_dir.glob("sdn-comments-*/sdn_comments.csv"))
        _load(lists, "OFAC_SDN", "entries", services.load_ofac_list, primary=sdn, comments=comments, now=now)
    if consolidated := _newest(ofac_dir.glob("consolidated-*/cons_prim.csv")):
        alt, comments = consolidated.with_name("cons_alt.csv"), consolidated.with_name("cons_comments.csv")
        _load(
            lists,
            "OFAC_CONSOLIDATED",
            "entries",
            services.load_ofac_list,
            primary=consolidated,
            alt=alt if alt.exists() else None,
            comments=comments if comments.exists() else None,
            now=now,
        )
    paths = sorted(addresses_dir.glob("*/sanctioned_addresses_*.txt")) + sorted(addresses_dir.glob("*/*.csv"))
    if paths:
        _load(lists, "OFAC_ADDRESSES", "addresses", services.load_address_lists, paths=paths, now=now)
    return lists


def _newest(paths) -> Path | None:
    found = sorted(paths, key=lambda p: p.parent.name)
    return found[-1] if found else None


def _load(lists: _Lists, source: str, unit: str, loader: Callable, **files) -> None:
    try:
        result = loader(source=source, actor=ACTOR, **files)
    except ofac.ListFormatError as exc:
        lists.problems.append(f"{source} not loaded ({exc})")
        return
    lists.loaded.append(f"{source} {result.version.entries:,} {unit}")


# ---- the plan: steps at the times they happened, run in time order -------------------------------------
class _Timeline:
    def __init__(self, now: datetime):
        self.latest = now - MINUTE  # nothing happens in the future
        self.steps: list[tuple[datetime, int, Callable[[datetime], None]]] = []

    def at(self, when: datetime, step: Callable[[datetime], None]) -> None:
        self.steps.append((min(when, self.latest), len(self.steps), step))

    def run(self) -> None:
        for when, _, step in sorted(self.steps, key=lambda s: s[:2]):
            step(when)


class _Plan:
    def __init__(self, rng: random.Random, now: datetime, desk: User, *, scale: float):
        self.rng, self.now, self.scale = rng, now, scale
        self.timeline = _Timeline(now)
        self.desk = desk
        self.compliance = User.objects.get(username="compliance")
        self.admin = User.objects.get(username="admin")
        self.needs = {
            track: list(
                Requirement.objects.filter(track=track, active=True)
                .order_by("level", "pk")
                .values_list("level", "kind", "code")
            )
            for track in Track.values
        }
        self.labels = dict(Requirement.objects.values_list("code", "label"))
        self.second_review_from = parameters.param("kyc.second_review_min_level", at=now)
        self.pools: dict[str, list[Customer]] = {}
        self.used: set[int] = set()

    def count(self, full: int) -> int:
        return max(1, round(full * self.scale))

    def ago(self, hours: float) -> datetime:
        return self.now - timedelta(hours=hours)

    def choose_customers(self, customers: list[Customer]) -> None:
        """Customers free for the plan: those without a screening hit (a function of the lists alone)."""
        busy = set(ScreeningHit.objects.values_list("customer_id", flat=True))
        for customer in customers:
            if customer.pk not in busy:
                self.pools.setdefault(customer.type, []).append(customer)

    def pick(self, customer_type: str, levels: tuple[int, ...] = (0, 1, 2)) -> Customer | None:
        """A free customer of the type, at one of the levels if any is left (else at any level)."""
        free = [c for c in self.pools.get(customer_type, []) if c.pk not in self.used]
        preferred = [c for c in free if c.kyc_level in levels]
        if not (chosen := preferred or [c for c in free if c.kyc_level < 3] or free):
            return None
        customer = self.rng.choice(chosen)
        self.used.add(customer.pk)
        return customer

    def needs_second_review(self, customer: Customer, level: int) -> bool:
        return customer.type != Customer.Type.INDIVIDUAL or level >= self.second_review_from

    def story(self, customer: Customer, opened_at: datetime) -> "_Story":
        return _Story(self, customer, opened_at)


class _Story:
    """One customer's KYC case, told as service calls at the times they happen."""

    def __init__(self, plan: _Plan, customer: Customer, opened_at: datetime):
        self.plan, self.customer, self.opened_at = plan, customer, opened_at
        self.level = min(customer.kyc_level + 1, 3)  # a customer at level 3 is up for its periodic review
        self.track = selectors.track_of(customer)
        self.corporate = self.track == Track.CORPORATE
        self.people = _firm_people(plan.rng, customer) if self.corporate else {}
        self.case: KycCase | None = None
        plan.timeline.at(opened_at, self._open)

    @property
    def second_review(self) -> bool:
        return self.plan.needs_second_review(self.customer, self.level)

    def _open(self, when: datetime) -> None:
        self.case = services.open_case(customer=self.customer, requested_level=self.level, actor=ACTOR, now=when)

    def material(self, start: datetime, *, omit: tuple[str, ...] = (), named: dict | None = None) -> datetime:
        """Everything the level needs but `omit` (codes or kinds), one item a few minutes after another."""
        when, fields = start, {}
        for level, kind, code in self.plan.needs[self.track]:
            if level > self.level or code in omit or kind in omit:
                continue
            if kind == Requirement.Kind.FIELD:
                if not (code in selectors.CUSTOMER_FIELDS and getattr(self.customer, code)):
                    fields[code] = self._field(code)
                continue
            when += timedelta(minutes=self.plan.rng.randint(1, 6))
            if kind == Requirement.Kind.DOCUMENT:
                person = (named or {}).get(code, self._named_person(code))
                self.plan.timeline.at(when, lambda at, c=code, p=person: self._document(at, c, p))
            else:
                self.plan.timeline.at(when, lambda at, c=code: self._check(at, c))
        if fields:
            self.plan.timeline.at(start, lambda at: self._fields(at, fields))
        return when

    def _field(self, code: str) -> str:
        if code == "authorised_person":
            return self.people["authorised"]
        if code == "contact_details":
            return f"{self.people['authorised']}, {self.customer.phone}, {self.customer.email}"
        if code == "registry_link":
            return f"https://opencorporates.com/companies/{self.customer.country.lower()}/{self.people['number']}"
        return "on file"

    def _named_person(self, code: str) -> str:
        if not self.corporate:
            return self.customer.name if code.startswith("ID_") else ""
        return {
            "ID_AUTHORISED_PERSON": self.people["authorised"],
            "BOARD_RESOLUTION": self.people["authorised"],
            "POWER_OF_ATTORNEY": self.people["authorised"],
            "ID_ULTIMATE_CONTROLLER": self.people["controller"],
            "ID_LARGEST_SHAREHOLDER": self.people["shareholder"],
        }.get(code, "")

    def _fields(self, when: datetime, fields: dict) -> None:
        services.update_dossier(case=self.case, data=fields, actor=_staff(self.plan.desk), now=when)

    def _document(self, when: datetime, code: str, person: str) -> None:
        title = self.plan.labels.get(code, code)
        name, content = _document_file(self.plan.rng, code, title, self.customer, person)
        services.add_document(
            case=self.case,
            document_type=code,
            upload=SimpleUploadedFile(name, content),
            named_person=person,
            actor=_staff(self.plan.desk),
            now=when,
        )

    def _check(self, when: datetime, code: str) -> None:
        note = CHECK_NOTES.get(code, "verified in the app")
        if code == "FACE_MATCH":
            note = note.format(similarity=self.plan.rng.randint(91, 99))
        services.record_check(case=self.case, check=code, note=note, actor=_staff(self.plan.desk), now=when)

    def assign(self, when: datetime, user: User, reason: str) -> None:
        self.plan.timeline.at(
            when,
            lambda at: services.assign_case(
                case=self.case, assignee=user, actor=_staff(self.plan.compliance), now=at, reason=reason
            ),
        )

    def decide(self, when: datetime, user: User, outcome: str, reason: str) -> None:
        self.plan.timeline.at(
            when,
            lambda at: services.decide_case(case=self.case, outcome=outcome, reason=reason, actor=_staff(user), now=at),
        )

    def approve(self, first: datetime, second: datetime) -> None:
        """Approved by the desk and, where the level or the track needs it, by compliance."""
        self.decide(first, self.plan.desk, APPROVE, self._reason(FIRST_APPROVALS))
        if self.second_review:
            self.decide(second, self.plan.compliance, APPROVE, self._reason(SECOND_APPROVALS))

    def _reason(self, table: dict) -> str:
        key = "market maker" if self.customer.type == Customer.Type.MARKET_MAKER else self.track
        return self.plan.rng.choice(table[key])


def _staff(user: User) -> audit.Actor:
    return audit.Actor.staff(user)


# ---- lookalikes of listed people -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Listed:
    pk: int
    name: str  # as listed: "SURNAME, Given Names"
    birth_dates: tuple[str, ...]
    countries: tuple[str, ...]

    @property
    def surname(self) -> str:
        return self.name.partition(", ")[0]

    @property
    def given(self) -> list[str]:
        return self.name.partition(", ")[2].split()


_LISTED_NAME = re.compile(r"[A-Z][A-Z'-]+(?: [A-Z][A-Z'-]+)?, [A-Z][A-Za-z'-]+(?: [A-Z][A-Za-z'-]+){0,2}")
_SPELLINGS: dict[str, list[str]] = {}
for _spelling, _canonical in matching.VARIANTS.items():
    _SPELLINGS.setdefault(_canonical, [_canonical]).append(_spelling)
# Names written in many ways (Muhammad, Yusuf, Aleksandr …) make the clearest transliteration variants.
_SPELLINGS = {canonical: spellings for canonical, spellings in _SPELLINGS.items() if len(spellings) >= 3}


@dataclass(frozen=True)
class Lookalike:
    kind: str
    customer: Customer
    name: str
    entry_name: str


def _plant_lookalikes(plan: _Plan) -> list[Lookalike]:
    """Customers renamed to close variants of listed people; each opens a case and is screened at once."""
    listed = _listed_people()
    plan.rng.shuffle(listed)
    index, threshold = selectors.screening_index(), float(parameters.param("kyc.name_match_threshold"))
    planted, taken = [], set()
    for kind, variant in LOOKALIKES:
        for person in listed:
            if person.pk in taken or (name := variant(plan.rng, person)) is None:
                continue
            customer = plan.pick(Customer.Type.INDIVIDUAL, levels=(0, 1))
            if customer is None:
                return planted
            born, country = _evidence(plan.rng, person, customer, namesake=kind == "namesake")
            subject = matching.Subject(name=name, birth_date=born, country=country, is_person=True)
            if person.pk not in {m.entry_id for m in index.screen(subject, threshold=threshold)}:
                plan.used.discard(customer.pk)
                continue
            taken.add(person.pk)
            planted.append(Lookalike(kind, customer, name, person.name))
            _lookalike_story(plan, kind, customer, name, born, country, len(planted))
            break
    return planted


def _listed_people() -> list[_Listed]:
    rows = ListEntry.objects.filter(kind="INDIVIDUAL", removed_at__isnull=True).order_by("source", "pk")
    people = [
        _Listed(pk, name, tuple(births), tuple(countries))
        for pk, source, name, births, countries in rows.values_list("pk", "source", "name", "birth_dates", "countries")
        if _LISTED_NAME.fullmatch(name)
    ]
    # People with a full date of birth make the clearest hits; the rest come after them.
    return sorted(people, key=lambda p: not any(len(d) == 10 for d in p.birth_dates))


def _title(words: list[str]) -> str:
    return " ".join(w if any(c.islower() for c in w) else w.title() for w in words)


def _transliterated(rng: random.Random, person: _Listed) -> str | None:
    words = [*person.given, person.surname]
    spots = [i for i, w in enumerate(words) if matching.VARIANTS.get(w.lower(), w.lower()) in _SPELLINGS]
    if not spots:
        return None
    i = rng.choice(spots)
    group = _SPELLINGS[matching.VARIANTS.get(words[i].lower(), words[i].lower())]
    words[i] = rng.choice([s for s in group if s != words[i].lower()]).title()
    return _title(words)


def _surname_first(rng: random.Random, person: _Listed) -> str | None:
    return _title([*person.surname.split(), *person.given]) if len(person.given) >= 1 else None


def _typo(rng: random.Random, person: _Listed) -> str | None:
    words = [*person.given, *person.surname.split()]
    longest = max(range(len(words)), key=lambda i: (len(words[i]), -i))
    word = words[longest]
    if len(words) < 2 or len(word) < 6 or not word.isalpha():
        return None
    at = rng.randrange(1, len(word) - 2)
    if word[at] == word[at + 1]:
        return None
    words[longest] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]  # two letters swapped
    return _title(words)


def _middle_dropped(rng: random.Random, person: _Listed) -> str | None:
    return _title([person.given[0], *person.surname.split()]) if len(person.given) >= 2 else None


def _namesake(rng: random.Random, person: _Listed) -> str | None:
    full_dates = [d for d in person.birth_dates if len(d) == 10 and d < "1986"]
    return _title([*person.given, *person.surname.split()]) if full_dates and person.given else None


LOOKALIKES = (
    ("transliteration", _transliterated),
    ("surname first", _surname_first),
    ("typo", _typo),
    ("middle name dropped", _middle_dropped),
    ("namesake", _namesake),
)


def _evidence(rng, person: _Listed, customer: Customer, *, namesake: bool) -> tuple[date, str]:
    """The customer's date of birth and country: the listed person's, or for the namesake clearly not."""
    full = [date.fromisoformat(d) for d in person.birth_dates if len(d) == 10]
    years = [int(d[:4]) for d in person.birth_dates if d[:4].isdigit()]
    if namesake:
        listed = min(full)
        born = date(min(listed.year + rng.randint(12, 25), 2005), rng.randint(1, 12), rng.randint(1, 28))
        return born, customer.country
    if full:
        born = rng.choice(full)
    elif years:
        born = date(rng.choice(years), rng.randint(1, 12), rng.randint(1, 28))
    else:
        born = customer.date_of_birth
    return born, person.countries[0] if person.countries else customer.country


def _lookalike_story(plan: _Plan, kind: str, customer: Customer, name: str, born: date, country: str, n: int):
    # Hits of the last two days; the namesake's was decided earlier, so their case could be approved since.
    renamed = plan.ago(plan.rng.uniform(52, 60) if kind == "namesake" else plan.rng.uniform(2, 8) + 9 * n)
    data = accounts_services.CustomerData(
        type=customer.type,
        name=name,
        country=country,
        email=_email(plan.rng, name, born),
        phone=customer.phone,
        date_of_birth=born,
    )
    plan.timeline.at(
        renamed,
        lambda at: accounts_services.upsert_customer(
            external_id=customer.external_id, data=data, imported_kyc_level=None, actor=ACTOR, now=at
        ),
    )
    customer.name, customer.country, customer.date_of_birth = name, country, born  # as the case will see them
    story = plan.story(customer, renamed + 20 * MINUTE)
    done = story.material(story.opened_at)
    # What the screening task does when the case opens, done here so the hit is in the queue now.
    plan.timeline.at(done + MINUTE, lambda at: services.screen_customer(customer=customer, actor=ACTOR, now=at))
    if kind == "transliteration":
        story.assign(done + 2 * H, plan.compliance, "sanctions hit on the applicant; compliance takes the case")
    if kind == "namesake":
        decided = done + timedelta(hours=plan.rng.uniform(3, 8))
        plan.timeline.at(decided, lambda at: _false_match(plan, customer, at))
        story.approve(decided + 2 * H, decided + 20 * H)


def _false_match(plan: _Plan, customer: Customer, when: datetime) -> None:
    hits = ScreeningHit.objects.filter(customer=customer, status=ScreeningHit.Status.OPEN).select_related("entry")
    for one in hits:
        listed = ", ".join(one.entry.birth_dates) or "no date of birth"
        reason = (
            f"Different person: the customer's passport gives {customer.date_of_birth:%d %b %Y} and nationality "
            f"{customer.country}; the listed person was born {listed}. Namesake, checked on a video call."
        )
        services.decide_hit(hit=one, true_match=False, reason=reason, actor=_staff(plan.compliance), now=when)


def _email(rng: random.Random, name: str, born: date) -> str:
    words = [re.sub(r"[^a-z]", "", anyascii(w).lower()) for w in name.split()]
    words = [w for w in words if w] or ["customer"]
    domain = rng.choice(("gmail.com", "gmail.com", "outlook.com", "proton.me", "yahoo.com"))
    return f"{words[0]}.{words[-1]}{born:%y}{rng.randint(1, 99)}@{domain}"


# ---- the case workload -----------------------------------------------------------------------------------
def _plan_cases(plan: _Plan) -> None:
    for scenario in SCENARIOS:
        for spec in scenario.specs[: plan.count(len(scenario.specs))]:
            customer = plan.pick(scenario.customer_type, scenario.levels)
            if customer is None:
                break
            story = plan.story(customer, plan.ago(spec["opened"]))
            if scenario.needs_second_review and not story.second_review:
                continue  # opened all the same: it waits for the first review
            scenario.tell(plan, story, spec)


@dataclass(frozen=True)
class _Scenario:
    customer_type: str
    levels: tuple[int, ...]
    specs: tuple[dict, ...]
    tell: Callable[[_Plan, _Story, dict], None]
    needs_second_review: bool = False


def _incomplete(plan: _Plan, story: _Story, spec: dict) -> None:
    omit = spec["omit"] if story.corporate else (("DOCUMENT",) if story.level == 1 else spec["omit"])
    done = story.material(story.opened_at, omit=omit)
    if user := _user(plan, spec.get("assigned")):
        story.assign(done + H, user, "first review")


def _awaiting_first(plan: _Plan, story: _Story, spec: dict) -> None:
    done = story.material(story.opened_at)
    if user := _user(plan, spec.get("assigned")):
        story.assign(done + timedelta(hours=spec.get("assigned_after", 1)), user, "first review")


def _came_back(plan: _Plan, story: _Story, spec: dict) -> None:
    done = story.material(story.opened_at)
    story.decide(done + 5 * H, plan.desk, SEND_BACK, plan.rng.choice(SEND_BACK_REASONS["first"]))
    # The customer uploads a better scan: the case is back in the first-review queue with a fresh SLA.
    code = "ID_DOCUMENT" if not story.corporate else "ID_AUTHORISED_PERSON"
    person = story._named_person(code)
    plan.timeline.at(plan.ago(spec["returned"]), lambda at: story._document(at, code, person))


def _awaiting_second(plan: _Plan, story: _Story, spec: dict) -> None:
    story.material(story.opened_at)
    first = plan.ago(spec["first_review"])
    story.decide(first, plan.desk, APPROVE, story._reason(FIRST_APPROVALS))
    if user := _user(plan, spec.get("assigned")):
        story.assign(first + 2 * H, user, "second review")


def _sent_back(plan: _Plan, story: _Story, spec: dict) -> None:
    named = {"POWER_OF_ATTORNEY": story.people["other"]} if story.corporate else None
    done = story.material(story.opened_at, named=named)
    decided = plan.ago(spec["decided"])
    if story.corporate:
        reason = (
            f"The power of attorney names {story.people['other']}, but the application names "
            f"{story.people['authorised']} as the authorised person. Upload a power of attorney for "
            f"{story.people['authorised']}, or a new application naming {story.people['other']}."
        )
        story.decide(decided, plan.desk, SEND_BACK, reason)
        return
    if spec["stage"] == "second" and story.second_review:
        story.decide(done + 3 * H, plan.desk, APPROVE, story._reason(FIRST_APPROVALS))
        story.decide(decided, plan.compliance, SEND_BACK, plan.rng.choice(SEND_BACK_REASONS["second"]))
    else:
        story.decide(decided, plan.desk, SEND_BACK, plan.rng.choice(SEND_BACK_REASONS["first"]))


def _approved(plan: _Plan, story: _Story, spec: dict) -> None:
    done = story.material(story.opened_at)
    first = done + timedelta(hours=plan.rng.uniform(2, 30))
    story.approve(first, first + timedelta(hours=plan.rng.uniform(3, 40)))


def _rejected(plan: _Plan, story: _Story, spec: dict) -> None:
    done = story.material(story.opened_at)
    first = done + timedelta(hours=plan.rng.uniform(2, 30))
    key = "market maker" if story.customer.type == Customer.Type.MARKET_MAKER else story.track
    if spec["stage"] == "second" and story.second_review:
        story.decide(first, plan.desk, APPROVE, story._reason(FIRST_APPROVALS))
        story.decide(first + timedelta(hours=plan.rng.uniform(4, 30)), plan.compliance, REJECT, spec["reason"][key])
    else:
        story.decide(first, plan.desk, REJECT, spec["reason"][key])


def _user(plan: _Plan, name: str | None) -> User | None:
    return {"desk": plan.desk, "compliance": plan.compliance, "admin": plan.admin}.get(name or "")


REJECTIONS = (
    {
        Track.INDIVIDUAL: "The passport's machine-readable zone does not match the printed date of birth; "
        "the document appears altered.",
        Track.CORPORATE: "The certificate of incorporation does not match the registry: the registered number "
        "belongs to another company.",
        "market maker": "The registry shows a change of control that the application does not disclose.",
    },
    {
        Track.INDIVIDUAL: "The customer declined to explain the source of the funds deposited (EUR 180,000 "
        "within a month of sign-up).",
        Track.CORPORATE: "The registry look-up shows the company was struck off; the business licence provided "
        "is no longer valid.",
        "market maker": "The ultimate controller could not be identified through the nominee shareholders.",
    },
    {
        Track.INDIVIDUAL: "Face match failed three times; the selfie does not show the person on the ID document.",
        Track.CORPORATE: "Adverse media: the director named as authorised person is subject to a fraud "
        "investigation reported by the regulator.",
        "market maker": "Adverse media on the ultimate controller.",
    },
)

SCENARIOS = (
    # Open, material missing: the ID document (level 1) or a check of the level applied for.
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (0, 1, 2),
        (
            {"opened": 70, "omit": ("DOCUMENT",)},
            {"opened": 20, "omit": ("CHECK",), "assigned": "desk"},
            {"opened": 5, "omit": ("DOCUMENT",)},
            {"opened": 31, "omit": ("CHECK",)},
            {"opened": 2, "omit": ("DOCUMENT", "CHECK")},
        ),
        _incomplete,
    ),
    _Scenario(
        Customer.Type.CORPORATE,
        (0, 1, 2),
        (
            {"opened": 26, "omit": ("BOARD_RESOLUTION", "POWER_OF_ATTORNEY", "registry_link")},
            {"opened": 90, "omit": ("LETTER_OF_UNDERTAKING",), "assigned": "desk"},
        ),
        _incomplete,
    ),
    # Complete, awaiting the first review; two past their SLA.
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (0, 1, 2),
        (
            {"opened": 100, "assigned": "desk", "assigned_after": 20},
            {"opened": 3},
            {"opened": 60},
            {"opened": 26, "assigned": "desk"},
            {"opened": 8},
            {"opened": 45, "assigned": "desk"},
            {"opened": 1},
        ),
        _awaiting_first,
    ),
    # Sent back, then a new document: in the first-review queue again.
    _Scenario(Customer.Type.INDIVIDUAL, (0, 1, 2), ({"opened": 110, "returned": 6},), _came_back),
    # Awaiting the second review: individual levels 2 and 3, corporates, a market maker's periodic review.
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (1, 2),
        (
            {"opened": 90, "first_review": 65, "assigned": "compliance"},
            {"opened": 30, "first_review": 10},
            {"opened": 50, "first_review": 30, "assigned": "admin"},
            {"opened": 12, "first_review": 4, "assigned": "compliance"},
        ),
        _awaiting_second,
        needs_second_review=True,
    ),
    _Scenario(
        Customer.Type.CORPORATE,
        (0, 1, 2),
        ({"opened": 120, "first_review": 75}, {"opened": 40, "first_review": 20, "assigned": "compliance"}),
        _awaiting_second,
        needs_second_review=True,
    ),
    _Scenario(
        Customer.Type.MARKET_MAKER,
        (0, 1, 2, 3),
        ({"opened": 50, "first_review": 28, "assigned": "admin"},),
        _awaiting_second,
        needs_second_review=True,
    ),
    # Sent back to the customer: by the desk, by compliance, and a corporate whose papers disagree.
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (0, 1, 2),
        (
            {"opened": 60, "decided": 40, "stage": "first"},
            {"opened": 70, "decided": 20, "stage": "second"},
            {"opened": 180, "decided": 150, "stage": "first"},
        ),
        _sent_back,
    ),
    _Scenario(Customer.Type.CORPORATE, (0, 1, 2), ({"opened": 75, "decided": 50},), _sent_back),
    # Decided: approved (signed by one or two reviewers) and rejected with reasons.
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (0,),
        ({"opened": 200}, {"opened": 150}, {"opened": 100}),
        _approved,
    ),
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (1, 2),
        ({"opened": 210}, {"opened": 170}, {"opened": 130}, {"opened": 90}),
        _approved,
    ),
    _Scenario(Customer.Type.CORPORATE, (0, 1, 2), ({"opened": 200}, {"opened": 140}), _approved),
    _Scenario(Customer.Type.MARKET_MAKER, (0, 1, 2, 3), ({"opened": 190},), _approved),
    _Scenario(
        Customer.Type.INDIVIDUAL,
        (0, 1, 2),
        (
            {"opened": 160, "stage": "first", "reason": REJECTIONS[0]},
            {"opened": 180, "stage": "second", "reason": REJECTIONS[1]},
            {"opened": 120, "stage": "second", "reason": REJECTIONS[2]},
        ),
        _rejected,
    ),
    _Scenario(
        Customer.Type.CORPORATE, (0, 1, 2), ({"opened": 170, "stage": "second", "reason": REJECTIONS[1]},), _rejected
    ),
)

FIRST_APPROVALS = {
    Track.INDIVIDUAL: (
        "Passport checked against the application: name, date of birth and nationality match; MRZ valid.",
        "ID card front and back legible and valid; data matches the application; checks recorded.",
        "Document genuine on visual inspection, not expired, data matches; no adverse media found.",
    ),
    Track.CORPORATE: (
        "All KYB documents present; the authorised person is the same on the board resolution, the power "
        "of attorney and the ID; registry entry checked.",
        "Registry extract matches the certificate of incorporation; ownership chart and IDs consistent.",
    ),
    "market maker": (
        "Periodic review: documents refreshed, no change of control since the last review, registry checked.",
    ),
}
SECOND_APPROVALS = {
    Track.INDIVIDUAL: (
        "Second review: dossier complete, screening clear, expected activity consistent with the profile.",
        "Four-eyes check done: documents and checks verified, no sanctions or PEP match; risk rating low.",
    ),
    Track.CORPORATE: (
        "KYB second review: ownership structure understood, ultimate controller and shareholder screened clear.",
        "Source of funds explained (operating revenue, bank statements on file); risk rating medium; approved.",
    ),
    "market maker": (
        "Market-maker periodic review approved: market-making agreement in force, controllers screened clear.",
    ),
}
SEND_BACK_REASONS = {
    "first": (
        "The ID photo is blurred: the date of birth and the document number cannot be read. Please upload a "
        "sharp scan of the whole page.",
        "The ID document expired in March 2025. Please upload a valid passport or national ID card.",
        "The corners of the document are cut off in the scan; please upload the full page.",
    ),
    "second": (
        "The face match was done on a photo of a screen; please repeat the live selfie in the app.",
        "Deposits exceed the declared annual income; please upload a payslip or a bank statement for the "
        "source of funds.",
    ),
}
CHECK_NOTES = {
    "AUTHENTICATOR": "TOTP authenticator enrolled in the app",
    "ANTI_PHISHING_CODE": "anti-phishing code set in the app",
    "FACE_MATCH": "liveness passed; face matches the ID photo (similarity 0.{similarity})",
}


# ---- people of a firm -------------------------------------------------------------------------------
def _firm_people(rng: random.Random, customer: Customer) -> dict:
    given, family = demo._NAMES.get(customer.country) or demo._NAMES["GB"]

    def person() -> str:
        return f"{rng.choice(given)} {rng.choice(family)}"

    authorised, controller = person(), person()
    other = person()
    while other == authorised:
        other = person()
    return {
        "authorised": authorised,
        "controller": controller,
        "shareholder": controller if rng.random() < 0.5 else person(),
        "other": other,
        "number": f"{rng.randrange(10**7, 10**8)}",
    }


# ---- documents: small real PDFs and PNGs -----------------------------------------------------------------
DOCUMENT_FILES = {
    "ID_DOCUMENT": "passport.png",
    "APPLICATION_FORM": "application-form.pdf",
    "ID_ULTIMATE_CONTROLLER": "passport-ultimate-controller.png",
    "ID_LARGEST_SHAREHOLDER": "passport-largest-shareholder.png",
    "ID_AUTHORISED_PERSON": "passport-authorised-person.png",
    "BUSINESS_LICENCE": "certificate-of-incorporation.pdf",
    "LETTER_OF_UNDERTAKING": "letter-of-undertaking.pdf",
    "BOARD_RESOLUTION": "board-resolution.pdf",
    "POWER_OF_ATTORNEY": "power-of-attorney.pdf",
}


def _document_file(rng, code: str, title: str, customer: Customer, person: str) -> tuple[str, bytes]:
    name = DOCUMENT_FILES.get(code) or f"{code.lower().replace('_', '-')}.pdf"
    if name.endswith(".png"):
        return name, _png(rng)
    lines = [title, customer.name, f"Customer {customer.external_id}"]
    if person:
        lines.append(f"Names: {person}")
    lines.append("Demo document generated for the back office; not a real record.")
    return name, _pdf(lines)


def _pdf(lines: list[str]) -> bytes:
    """A one-page PDF showing the lines (ASCII) in Helvetica."""
    text = "BT /F1 12 Tf 72 770 Td 16 TL " + " ".join(f"({_pdf_text(line)}) '" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _pdf_text(line: str) -> str:
    return anyascii(line).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _png(rng: random.Random) -> bytes:
    """A small grey scan (a pale page, a darker photo box, lines of 'text') with its own speckles."""
    pixels = bytearray(_SCAN)
    for _ in range(48):
        pixels[rng.randrange(len(pixels))] = rng.randrange(256)
    stride = _SCAN_SIZE[0]
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(_SCAN_SIZE[1]))  # filter: none
    header = struct.pack(">IIBBBBB", *_SCAN_SIZE, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _scan(width: int, height: int) -> bytes:
    def shade(x: int, y: int) -> int:
        if 8 <= x < 32 and 12 <= y < 44:
            return 120
        if 40 <= x < 40 + (y * 7) % 48 and y % 8 in (2, 3) and 10 <= y < 58:
            return 70
        return 232

    return bytes(shade(x, y) for y in range(height) for x in range(width))


_SCAN_SIZE = (96, 64)
_SCAN = _scan(*_SCAN_SIZE)


# ---- summary -------------------------------------------------------------------------------------------
def _summary(lists: _Lists, planted: list[Lookalike], *, desk_created: bool, now: datetime) -> str:
    if lists.folder is None:
        list_part = f"lists skipped ({SANCTIONS_SETTING} is empty)"
    elif not lists.loaded:
        list_part = f"lists skipped (no reference data at {lists.folder})"
    else:
        list_part = "loaded " + ", ".join(lists.loaded)
    if lists.problems:
        list_part += "; " + "; ".join(lists.problems)
    hits = Counter(ScreeningHit.objects.values_list("status", flat=True))
    kinds = ", ".join(p.kind for p in planted)
    hit_part = (
        f"{hits[ScreeningHit.Status.OPEN]} open hits ({len(planted)} planted lookalikes: {kinds or 'none'}), "
        f"{hits[ScreeningHit.Status.FALSE_MATCH]} remembered false match"
    )
    statuses = Counter(KycCase.objects.values_list("status", flat=True))
    overdue = (
        KycCase.objects.filter(closed_at__isnull=True, due_at__lt=now).exclude(status=KycCase.Status.SENT_BACK).count()
    )
    case_part = (
        f"{sum(statuses.values())} KYC cases ("
        + ", ".join(f"{statuses[value]} {label.lower()}" for value, label in KycCase.Status.choices)
        + f"; {overdue} past their SLA)"
    )
    desk_part = f"first reviewer {DESK_USER[0]!r} " + ("created" if desk_created else "existed")
    return f"{list_part}; {hit_part}; {case_part}; {desk_part}"
