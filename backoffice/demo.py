"""A believable demo exchange: staff, customers and accounts, instruments and price history.

The content is a function of the seed: each section draws from its own `random.Random` seeded with
"<seed>:<section>", so adding a section (trades, alerts, withdrawals …) never changes what the others
produce. Customers and instruments have fixed dates. Only what must look live follows the clock: the
price history ends at the current hour, the new listing is a few minutes old, the dated future is the
next quarterly contract, and staff are enrolled "now". Prices are a seeded walk over absolute hours from
a fixed start, so runs with the same seed agree on every hour they share; running again (with any seed)
keeps the hours already stored and adds the missing ones.

A section is a function `(rng, now, options) -> summary line`, registered with `@section(name)`. An app
may add its own in an `<app>/demo.py` module; these are imported in INSTALLED_APPS order, so an app's
sections run after the ones they build on. Writes go through the services, so the operations log tells
the same story as the data; customers and accounts are the exception (see `build_customers`).
"""

import itertools
import math
import random
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyotp
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.module_loading import autodiscover_modules

from accounts.models import Account, Customer, User
from accounts.services import CustomerData
from backoffice import api_clients, audit
from trading_risk import services as trading_risk
from trading_risk.models import AssetPrice, InstrumentPrice

ACTOR = audit.Actor.system("load_demo")
DEMO_PASSWORD = "demo-password-1"
ENGINE_CLIENT_NAME = "matching-engine"

# Customers sign up between these fixed dates, more of them recently (the exchange grows).
SIGNUPS_FROM = datetime(2022, 1, 3, tzinfo=UTC)
SIGNUPS_UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
CUSTOMER_BATCH = 1000
# The price walks start here, whatever the clock says, so an hour's price depends on the seed only.
PRICE_WALK_FROM = datetime(2026, 1, 1, tzinfo=UTC)
PRICE_HISTORY = timedelta(days=7)
PRICE_BATCH = 10_000  # the API's batch size


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 3000


Section = Callable[[random.Random, datetime, DemoOptions], str]
_sections: dict[str, Section] = {}


def section(name: str) -> Callable[[Section], Section]:
    """Register a builder; sections run in registration order, each with its own seeded rng."""

    def register(build: Section) -> Section:
        _sections[name] = build
        return build

    return register


def section_rng(seed: int, name: str) -> random.Random:
    return random.Random(f"{seed}:{name}")


def is_loaded() -> bool:
    """Whether the exchange already has customers (demo or real)."""
    return Customer.objects.exists()


def load(*, seed: int, options: DemoOptions, now: datetime, report: Callable[[str], None]) -> str | None:
    """Build the demo exchange in one transaction; returns the engine client's token (None if it existed)."""
    autodiscover_modules("demo")
    with transaction.atomic():
        for name, build in _sections.items():
            report(f"{name}: {build(section_rng(seed, name), now, options)}")
        return _engine_client(now)


def _engine_client(now: datetime) -> str | None:
    try:
        _, token = api_clients.create_api_client(
            name=ENGINE_CLIENT_NAME, scopes=list(api_clients.DEFAULT_SCOPES), actor=ACTOR, now=now
        )
    except api_clients.NameTaken:
        return None
    return token


# ---- staff -------------------------------------------------------------------------------------------
DEMO_STAFF = (  # username, first name, last name, role
    ("risk", "Rita", "Okafor", "risk officer"),
    ("compliance", "Clara", "Jensen", "compliance officer"),
    ("ops", "Omar", "Haddad", "operations"),
    ("auditor", "Aude", "Marchand", "auditor"),
    ("admin", "Adam", "Novak", "administrator"),
)


@section("staff")
def build_staff(rng: random.Random, now: datetime, options: DemoOptions) -> str:
    """A staff member per role, enrolled in TOTP; existing ones are left alone (their TOTP keeps working)."""
    missing = [row for row in DEMO_STAFF if not User.objects.filter(username=row[0]).exists()]
    # One hash for all: they share a published password anyway, and each hash costs about half a second.
    password = make_password(DEMO_PASSWORD) if missing else ""
    for row in missing:
        _create_staff(*row, password=password, now=now)
    names = ", ".join(username for username, *_ in missing) or "all existed"
    return f"{len(missing)} created ({names}), password {DEMO_PASSWORD!r}"


def _create_staff(username: str, first: str, last: str, role: str, *, password: str, now: datetime) -> User:
    user = User.objects.create(
        username=username,
        first_name=first,
        last_name=last,
        email=f"{username}@backoffice.localhost",
        password=password,
        is_staff=True,
        is_superuser=role == "administrator",
        date_joined=now,
        # A random secret even in a demo: `manage.py demo_totp_code` shows the current code.
        totp_secret=pyotp.random_base32(),
        totp_confirmed_at=now,
    )
    user.groups.add(Group.objects.get(name=role))
    audit.record(
        actor=ACTOR,
        action="staff.create",
        target=user,
        now=now,
        after={"username": username, "roles": [role], "is_superuser": user.is_superuser, "second_factor": "totp"},
    )
    return user


# ---- instruments -------------------------------------------------------------------------------------
INSTRUMENTS = (  # symbol, kind, base, quote, listed_at
    ("BTCUSDT", "SPOT", "BTC", "USDT", datetime(2019, 9, 2, 8, tzinfo=UTC)),
    ("ETHUSDT", "SPOT", "ETH", "USDT", datetime(2019, 9, 2, 8, tzinfo=UTC)),
    ("ETHBTC", "SPOT", "ETH", "BTC", datetime(2019, 9, 2, 8, tzinfo=UTC)),
    ("XRPUSDT", "SPOT", "XRP", "USDT", datetime(2020, 1, 6, 8, tzinfo=UTC)),
    ("SOLUSDT", "SPOT", "SOL", "USDT", datetime(2020, 9, 14, 8, tzinfo=UTC)),
    ("BTCUSDT-PERP", "PERPETUAL", "BTC", "USDT", datetime(2019, 9, 10, 8, tzinfo=UTC)),
)
PERPETUAL = "BTCUSDT-PERP"
NEW_LISTING = ("LTCUSDC", "SPOT", "LTC", "USDC")
FUTURE_LISTED_BEFORE_EXPIRY = timedelta(days=182)


@section("instruments")
def build_instruments(rng: random.Random, now: datetime, options: DemoOptions) -> str:
    """Spot pairs, a perpetual, the next quarterly future, and a pair listed minutes ago (price band live)."""
    expires = quarterly_expiry(now)
    listed_now = now - timedelta(minutes=rng.randint(2, 8), seconds=rng.randint(0, 59))
    rows = [
        *((*row, None) for row in INSTRUMENTS),
        (future_symbol(expires), "FUTURE", "BTC", "USD", expires - FUTURE_LISTED_BEFORE_EXPIRY, expires),
        (*NEW_LISTING, listed_now, None),
    ]
    for symbol, kind, base, quote, listed_at, expires_at in rows:
        data = trading_risk.InstrumentData(
            kind=kind, base=base, quote=quote, listed_at=listed_at, expires_at=expires_at
        )
        trading_risk.upsert_instrument(symbol=symbol, data=data, actor=ACTOR, now=min(listed_at, now))
    return ", ".join(symbol for symbol, *_ in rows)


def quarterly_expiry(now: datetime) -> datetime:
    """The next quarterly delivery (last Friday of Mar/Jun/Sep/Dec, 08:00 UTC) at least two weeks away."""
    year, month = now.year, (now.month - 1) // 3 * 3 + 3
    while (expires := _last_friday(year, month).replace(hour=8)) - now < timedelta(days=14):
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return expires


def _last_friday(year: int, month: int) -> datetime:
    first_of_next = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    last_day = first_of_next - timedelta(days=1)
    return last_day - timedelta(days=(last_day.weekday() - 4) % 7)


def future_symbol(expires: datetime) -> str:
    return f"BTCUSD-{expires:%Y%m%d}"


# ---- customers and accounts --------------------------------------------------------------------------
@dataclass(frozen=True)
class Country:
    code: str
    people: int
    firms: int
    phone: tuple[str, tuple[str, ...], int]
    tld: str
    legal: tuple[str, ...]


# code, weight among individuals, weight among firms, phone (calling code, mobile prefixes, digits), tld,
# company-name suffixes
COUNTRIES = (
    Country("TR", 9, 1, ("90", ("532", "535", "542", "555"), 7), "com.tr", ("A.Ş.", "Ltd. Şti.")),
    Country("BR", 8, 1, ("55", ("11 9", "21 9", "31 9", "41 9"), 8), "com.br", ("Ltda.", "S.A.")),
    Country("IN", 7, 2, ("91", ("98", "97", "99", "90"), 8), "in", ("Pvt. Ltd.", "LLP")),
    Country("NG", 6, 1, ("234", ("803", "806", "813", "816"), 7), "com.ng", ("Ltd",)),
    Country("VN", 6, 1, ("84", ("90", "91", "98", "97"), 7), "vn", ("JSC", "Co., Ltd.")),
    Country("DE", 6, 4, ("49", ("151", "160", "170", "176"), 7), "de", ("GmbH", "AG", "UG")),
    Country("GB", 5, 8, ("44", ("74", "75", "77", "78", "79"), 8), "co.uk", ("Ltd", "LLP", "plc")),
    Country("FR", 5, 2, ("33", ("6", "7"), 8), "fr", ("SAS", "SA", "SARL")),
    Country("ES", 4, 1, ("34", ("6", "7"), 8), "es", ("S.L.", "S.A.")),
    Country("IT", 4, 1, ("39", ("320", "333", "347", "349"), 7), "it", ("S.r.l.", "S.p.A.")),
    Country("AR", 4, 1, ("54", ("9 11", "9 351", "9 341"), 8), "com.ar", ("S.A.", "S.R.L.")),
    Country("MX", 4, 1, ("52", ("1 55", "1 33", "1 81"), 8), "com.mx", ("S.A. de C.V.", "S. de R.L.")),
    Country("KR", 4, 2, ("82", ("10",), 8), "co.kr", ("Co., Ltd.", "Inc.")),
    Country("PL", 3, 1, ("48", ("50", "60", "69", "79"), 7), "pl", ("Sp. z o.o.", "S.A.")),
    Country("NL", 3, 3, ("31", ("6",), 8), "nl", ("B.V.", "N.V.")),
    Country("AE", 3, 6, ("971", ("50", "52", "55", "56"), 7), "ae", ("FZ-LLC", "DMCC", "L.L.C.")),
    Country("ZA", 3, 1, ("27", ("72", "82", "83", "84"), 7), "co.za", ("(Pty) Ltd",)),
    Country("AU", 3, 2, ("61", ("4",), 8), "com.au", ("Pty Ltd",)),
    Country("SG", 2, 8, ("65", ("8", "9"), 7), "sg", ("Pte. Ltd.",)),
    Country("JP", 2, 2, ("81", ("80", "90", "70"), 8), "co.jp", ("K.K.", "G.K.")),
    # Jurisdictions where firms incorporate but the exchange has few or no retail customers.
    Country("CH", 0, 6, ("41", ("76", "78", "79"), 7), "ch", ("AG", "GmbH", "SA")),
    Country("HK", 0, 6, ("852", ("5", "6", "9"), 7), "com.hk", ("Limited",)),
    Country("KY", 0, 4, ("1 345", ("32", "92"), 5), "ky", ("Ltd.",)),
    Country("VG", 0, 4, ("1 284", ("34", "44", "54"), 5), "vg", ("Ltd.",)),
    Country("MT", 0, 3, ("356", ("79", "99"), 6), "com.mt", ("Ltd",)),
)
# Given names | family names by country. The Polish family names have no feminine form, so any pair is right.
PEOPLE = {
    "TR": (
        "Yusuf, Eymen, Ömer, Mustafa, Ahmet, Emir, Zeynep, Elif, Defne, Azra, Ecrin, Eylül, Mehmet, Can, "
        "Burak, Ayşe, Fatma, Emre | Yılmaz, Kaya, Demir, Şahin, Çelik, Yıldız, Yıldırım, Öztürk, Aydın, "
        "Özdemir, Arslan, Doğan, Kılıç, Aslan, Çetin, Kara, Koç"
    ),
    "BR": (
        "Miguel, Arthur, Gael, Heitor, Theo, Davi, Helena, Alice, Laura, Maria, Valentina, Beatriz, João, "
        "Pedro, Gabriel, Ana, Júlia, Rafael | Silva, Santos, Oliveira, Souza, Rodrigues, Ferreira, Alves, "
        "Pereira, Lima, Gomes, Costa, Ribeiro, Martins, Carvalho, Almeida, Lopes, Soares"
    ),
    "IN": (
        "Aarav, Vivaan, Aditya, Vihaan, Arjun, Rohan, Ananya, Diya, Priya, Aanya, Isha, Kavya, Rahul, "
        "Vikram, Sneha, Neha, Karan | Sharma, Verma, Gupta, Patel, Singh, Kumar, Reddy, Iyer, Nair, "
        "Mehta, Shah, Joshi, Rao, Das, Chatterjee, Malhotra, Kapoor"
    ),
    "NG": (
        "Chinedu, Emeka, Oluwaseun, Tunde, Ibrahim, Musa, Chiamaka, Ngozi, Folake, Aisha, Zainab, Amaka, "
        "Obinna, Segun, Kemi, Yetunde, Uche | Okafor, Adeyemi, Okonkwo, Bello, Ibrahim, Eze, Balogun, "
        "Nwosu, Adebayo, Okeke, Abubakar, Olawale, Chukwu, Ogunleye, Danjuma, Afolabi"
    ),
    "VN": (
        "Minh, Anh, Huy, Khang, Bao, Phuc, Linh, Ngoc, Trang, Mai, Thao, Huong, Duc, Tuan, Quang, Lan, "
        "Hoa | Nguyen, Tran, Le, Pham, Hoang, Huynh, Phan, Vu, Vo, Dang, Bui, Do, Ho, Ngo, Duong, Ly"
    ),
    "DE": (
        "Lukas, Leon, Finn, Jonas, Paul, Felix, Anna, Lena, Lea, Hannah, Sophie, Marie, Julia, Laura, "
        "Maximilian, Tobias, Katharina, Jan | Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, "
        "Becker, Schulz, Hoffmann, Koch, Richter, Klein, Wolf, Neumann, Schwarz, Zimmermann, Braun"
    ),
    "GB": (
        "Oliver, George, Harry, Jack, Jacob, Charlie, Olivia, Amelia, Isla, Ava, Emily, Sophie, James, "
        "William, Thomas, Daniel, Grace, Chloe | Smith, Jones, Taylor, Brown, Williams, Wilson, Johnson, "
        "Davies, Robinson, Wright, Thompson, Evans, Walker, White, Roberts, Green, Hall, Wood"
    ),
    "FR": (
        "Lucas, Hugo, Louis, Gabriel, Arthur, Jules, Emma, Léa, Chloé, Manon, Camille, Inès, Sarah, "
        "Mathilde, Thomas, Nicolas, Antoine | Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, "
        "Durand, Leroy, Moreau, Simon, Laurent, Lefebvre, Michel, Garcia, Fournier, Girard, Lambert"
    ),
    "ES": (
        "Hugo, Martín, Lucas, Mateo, Daniel, Pablo, Álvaro, Lucía, Sofía, Martina, María, Paula, Julia, "
        "Carmen, Javier, Alejandro, Elena | García, Fernández, González, Rodríguez, López, Martínez, "
        "Sánchez, Pérez, Gómez, Martín, Jiménez, Ruiz, Hernández, Díaz, Moreno, Álvarez, Romero"
    ),
    "IT": (
        "Leonardo, Francesco, Alessandro, Lorenzo, Mattia, Andrea, Giulia, Sofia, Aurora, Alice, Ginevra, "
        "Chiara, Marco, Luca, Giorgio, Federica, Elisa | Rossi, Russo, Ferrari, Esposito, Bianchi, "
        "Romano, Colombo, Ricci, Marino, Greco, Bruno, Gallo, Conti, De Luca, Costa, Giordano, Mancini"
    ),
    "AR": (
        "Mateo, Bautista, Felipe, Benjamín, Santino, Thiago, Emma, Sofía, Martina, Catalina, Delfina, "
        "Olivia, Juan, Nicolás, Lucía, Agustina, Facundo | González, Rodríguez, Gómez, Fernández, López, "
        "Díaz, Martínez, Pérez, García, Sánchez, Romero, Sosa, Álvarez, Torres, Ruiz, Ramírez, Acosta"
    ),
    "MX": (
        "Santiago, Mateo, Sebastián, Leonardo, Matías, Emiliano, Sofía, Valentina, Regina, Camila, "
        "Ximena, María José, Diego, Carlos, Fernanda, Andrea, Luis | Hernández, García, Martínez, López, "
        "González, Pérez, Rodríguez, Sánchez, Ramírez, Cruz, Flores, Gómez, Morales, Vázquez, Reyes, "
        "Jiménez, Torres"
    ),
    "KR": (
        "Min-jun, Seo-jun, Do-yun, Ye-jun, Si-woo, Ha-jun, Seo-yeon, Ji-woo, Ha-eun, Seo-yun, Min-seo, "
        "Ji-yoo, Jae-won, Hyun-woo, Soo-ah, Eun-ji, Dong-hyun | Kim, Lee, Park, Choi, Jung, Kang, Cho, "
        "Yoon, Jang, Lim, Han, Oh, Seo, Shin, Kwon, Hwang, Song"
    ),
    "PL": (
        "Jakub, Antoni, Jan, Szymon, Filip, Kacper, Zuzanna, Julia, Maja, Zofia, Hanna, Lena, Piotr, "
        "Tomasz, Katarzyna, Agnieszka, Michał | Nowak, Wójcik, Kowalczyk, Woźniak, Mazur, Krawczyk, "
        "Kaczmarek, Zając, Król, Wieczorek, Wróbel, Stępień, Dudek, Adamczyk, Sikora, Baran, Szewczyk"
    ),
    "NL": (
        "Daan, Sem, Lucas, Levi, Finn, Milan, Emma, Julia, Mila, Tess, Sophie, Zoë, Bram, Thijs, Sanne, "
        "Lotte, Ruben | de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Janssen, Visser, Smit, "
        "Meijer, de Boer, Mulder, de Groot, Bos, Vos, Peters, Hendriks"
    ),
    "AE": (
        "Mohammed, Ahmed, Omar, Khalid, Saeed, Rashid, Fatima, Mariam, Aisha, Noura, Hessa, Latifa, "
        "Hamdan, Sultan, Yousef, Layla, Salma | Al Mansoori, Al Hashimi, Al Nuaimi, Al Mazrouei, Al "
        "Shamsi, Al Suwaidi, Al, Ketbi, Al Dhaheri, Al Falasi, Al Zaabi, Al Marzooqi, Al Qubaisi, Al "
        "Mheiri"
    ),
    "ZA": (
        "Thabo, Sipho, Lwazi, Bongani, Pieter, Johan, Lerato, Nomvula, Thandi, Anele, Zanele, Annelie, "
        "Kagiso, Themba, Naledi, Ruan, Liam | Nkosi, Dlamini, Ndlovu, Khumalo, Mokoena, Mahlangu, van der "
        "Merwe, Botha, Pretorius, Naidoo, Pillay, Mthembu, Zulu, Sithole, Venter"
    ),
    "AU": (
        "Oliver, Noah, William, Jack, Leo, Lucas, Charlotte, Olivia, Amelia, Isla, Mia, Ava, Liam, Ethan, "
        "Chloe, Zoe, Matilda | Smith, Jones, Williams, Brown, Wilson, Taylor, Nguyen, Johnson, Martin, "
        "White, Anderson, Walker, Thompson, Kelly, Ryan, Murphy, Clarke"
    ),
    "SG": (
        "Wei Jie, Jun Hao, Zhi Hao, Ethan, Ryan, Marcus, Hui Min, Xin Yi, Jia Hui, Chloe, Rachel, Li "
        "Ting, Darren, Kelvin, Shirley, Nurul, Siti | Tan, Lim, Lee, Ng, Ong, Wong, Goh, Chua, Chan, Koh, "
        "Teo, Ang, Yeo, Tay, Ho, Low, Toh"
    ),
    "JP": (
        "Haruto, Sota, Yuto, Riku, Hinata, Kaito, Yui, Himari, Sakura, Mei, Aoi, Rin, Takumi, Kenta, "
        "Yuki, Haruka, Naoki | Sato, Suzuki, Takahashi, Tanaka, Watanabe, Ito, Yamamoto, Nakamura, "
        "Kobayashi, Kato, Yoshida, Yamada, Sasaki, Yamaguchi, Matsumoto, Inoue, Kimura"
    ),
}
LOCAL_MAIL = {
    "TR": ("hotmail.com", "yandex.com.tr"),
    "BR": ("uol.com.br", "bol.com.br"),
    "IN": ("rediffmail.com", "yahoo.co.in"),
    "NG": ("yahoo.com",),
    "VN": ("yahoo.com.vn",),
    "DE": ("web.de", "gmx.de", "t-online.de"),
    "GB": ("btinternet.com", "sky.com"),
    "FR": ("orange.fr", "free.fr", "laposte.net"),
    "ES": ("yahoo.es", "telefonica.net"),
    "IT": ("libero.it", "virgilio.it"),
    "AR": ("yahoo.com.ar", "fibertel.com.ar"),
    "MX": ("prodigy.net.mx", "yahoo.com.mx"),
    "KR": ("naver.com", "daum.net", "kakao.com"),
    "PL": ("wp.pl", "onet.pl", "interia.pl"),
    "NL": ("ziggo.nl", "kpnmail.nl"),
    "AE": ("eim.ae",),
    "ZA": ("webmail.co.za", "mweb.co.za"),
    "AU": ("bigpond.com", "optusnet.com.au"),
    "SG": ("singnet.com.sg",),
    "JP": ("yahoo.co.jp", "docomo.ne.jp"),
}
FAMILY_FIRST = {"VN", "KR"}
MARKET_MAKER_HOMES = ("KY", "VG", "SG", "HK", "GB", "CH", "AE")
GLOBAL_MAIL = ("gmail.com", "gmail.com", "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com")
FIRM_STEMS = ["Blue", "North", "Silver", "Iron", "Harbor", "Summit", "Atlas", "Cedar", "Granite", "Maple", "Orbit",
              "Vertex", "Lumen", "Nordic", "Pacific", "Delta", "Sterling", "Aurora", "Falcon", "Meridian", "Kestrel",
              "Oak", "Polar", "Coral"]  # fmt: skip
FIRM_ENDINGS = ["peak", "stone", "bridge", "field", "gate", "wave", "line", "point", "crest", "haven", "rock", "ridge"]
FIRM_TRADES = ["Digital", "Capital", "Ventures", "Holdings", "Trading", "Technologies", "Asset Management",
               "Payments", "Partners", "Commerce", "Investments", "Treasury Services"]  # fmt: skip
MARKET_MAKER_TRADES = ("Liquidity", "Markets", "Quantitative Trading", "Market Making", "Capital Markets")
# Share of each KYC level 0..3 by customer type: most retail users stop at level 1 or 2; firms go through KYB.
KYC_WEIGHTS = {
    Customer.Type.INDIVIDUAL: (15, 45, 32, 8),
    Customer.Type.CORPORATE: (5, 10, 45, 40),
    Customer.Type.MARKET_MAKER: (0, 0, 0, 1),
}
# Chance of each account kind beside spot, by customer type.
EXTRA_ACCOUNTS = {
    Customer.Type.INDIVIDUAL: (("MARGIN", 0.22), ("FUTURES", 0.38)),
    Customer.Type.CORPORATE: (("MARGIN", 0.4), ("FUTURES", 0.5)),
    Customer.Type.MARKET_MAKER: (("MARGIN", 1.0), ("FUTURES", 1.0)),
}
_ASCII = str.maketrans({"ł": "l", "Ł": "L", "ß": "ss", "ı": "i", "ø": "o", "æ": "ae", "đ": "d"})
_NAMES = {code: tuple(part.strip().split(", ") for part in text.split("|")) for code, text in PEOPLE.items()}


@dataclass(frozen=True)
class DemoAccount:
    external_id: str
    kind: str
    created_at: datetime


@dataclass(frozen=True)
class DemoCustomer:
    external_id: str
    data: CustomerData
    kyc_level: int
    created_at: datetime
    accounts: tuple[DemoAccount, ...]


@section("customers")
def build_customers(rng: random.Random, now: datetime, options: DemoOptions) -> str:
    """Customers and their accounts, in bulk, with one operations-log entry per thousand customers.

    One service call per customer and account costs ~8 queries each: about 25 s for the default 3,000
    customers here, a minute or more against a database in a container. The rows are what
    `accounts.services.upsert_customer` would write for a customer whose KYC level was imported.
    Customers that exist already (any earlier load) are left as they are, with their accounts.
    """
    customers = generate_customers(rng, options.customers)
    existing = set(
        Customer.objects.filter(external_id__in=[c.external_id for c in customers]).values_list(
            "external_id", flat=True
        )
    )
    new = [c for c in customers if c.external_id not in existing]
    for start in range(0, len(new), CUSTOMER_BATCH):
        _create_customers(new[start : start + CUSTOMER_BATCH], now)
    by_type = Counter(c.data.type for c in new)
    kinds = ", ".join(f"{by_type[kind]} {kind.label.lower()}" for kind in Customer.Type)
    return f"{len(new)} created ({kinds}), {sum(len(c.accounts) for c in new)} accounts; {len(existing)} existed"


def _create_customers(batch: list[DemoCustomer], now: datetime) -> None:
    rows = Customer.objects.bulk_create(
        Customer(
            external_id=c.external_id,
            **asdict(c.data),
            kyc_level=c.kyc_level,
            kyc_level_source=Customer.KycSource.IMPORTED if c.kyc_level else Customer.KycSource.NONE,
            created_at=c.created_at,
            updated_at=c.created_at,
        )
        for c in batch
    )
    accounts = Account.objects.bulk_create(
        Account(external_id=a.external_id, customer=row, kind=a.kind, created_at=a.created_at, updated_at=a.created_at)
        for c, row in zip(batch, rows, strict=True)
        for a in c.accounts
    )
    audit.record(
        actor=ACTOR,
        action="customer.bulk_create",
        target=("accounts.customer", f"{batch[0].external_id}..{batch[-1].external_id}"),
        now=now,
        after={
            "customers": len(rows),
            "accounts": len(accounts),
            "by_type": Counter(c.data.type for c in batch),
            "kyc_levels": Counter(str(c.kyc_level) for c in batch),
        },
        reason="demo data; KYC levels imported as verified before the back office",
    )


def generate_customers(rng: random.Random, count: int) -> list[DemoCustomer]:
    """The customers, oldest first, with IDs that grow with signup time (pure: no database)."""
    types = _customer_types(rng, count)
    signups = sorted(_signup_time(rng) for _ in types)
    used_emails: set[str] = set()
    number, customers = 10_000_000, []
    for customer_type, created_at in zip(types, signups, strict=True):
        number += rng.randint(1, 40)  # gaps: sign-ups that never became customers
        data = _customer_data(rng, customer_type, created_at, used_emails)
        kyc_level = rng.choices(range(4), weights=KYC_WEIGHTS[customer_type])[0]
        kinds = ["SPOT"] + [kind for kind, chance in EXTRA_ACCOUNTS[customer_type] if rng.random() < chance]
        # Account IDs derive from the customer's, so they stay unique even beside an earlier load's.
        demo_accounts = tuple(
            DemoAccount(f"A{number}-{i}", kind, _account_opened(rng, kind, created_at))
            for i, kind in enumerate(kinds, start=1)
        )
        customers.append(DemoCustomer(f"C{number}", data, kyc_level, created_at, demo_accounts))
    return customers


def _customer_types(rng: random.Random, count: int) -> list[str]:
    makers = max(1, round(count * 0.03)) if count else 0
    corporates = min(round(count * 0.12), count - makers)
    individuals = count - makers - corporates
    types = [Customer.Type.MARKET_MAKER] * makers + [Customer.Type.CORPORATE] * corporates
    types += [Customer.Type.INDIVIDUAL] * individuals
    rng.shuffle(types)
    return types


def _signup_time(rng: random.Random) -> datetime:
    span = (SIGNUPS_UNTIL - SIGNUPS_FROM).total_seconds()
    # sqrt skews sign-ups towards recent dates, as a growing exchange has them.
    return SIGNUPS_FROM + timedelta(seconds=int(span * math.sqrt(rng.random())))


def _account_opened(rng: random.Random, kind: str, signed_up: datetime) -> datetime:
    if kind == "SPOT":
        return signed_up + timedelta(minutes=1)
    # Margin and futures come later, within 90 days, but never after the last sign-up date.
    latest = min(timedelta(days=90), SIGNUPS_UNTIL - signed_up) // timedelta(minutes=1)
    return signed_up + timedelta(minutes=rng.randint(2, max(2, latest)))


def _customer_data(rng, customer_type, created_at, used_emails) -> CustomerData:
    if customer_type == Customer.Type.INDIVIDUAL:
        return _individual(rng, created_at, used_emails)
    homes = COUNTRIES
    if customer_type == Customer.Type.MARKET_MAKER:
        homes = tuple(c for c in COUNTRIES if c.code in MARKET_MAKER_HOMES)
    country = rng.choices(homes, weights=[c.firms for c in homes])[0]
    trades = MARKET_MAKER_TRADES if customer_type == Customer.Type.MARKET_MAKER else FIRM_TRADES
    for attempt in itertools.count():
        # One firm per web domain; should a country's names run out, firms get numbered ones.
        brand = f"{rng.choice(FIRM_STEMS)}{rng.choice(FIRM_ENDINGS)}{attempt // 20 or ''}"
        domain = f"{brand}.{country.tld}".lower()
        if domain not in used_emails:
            break
    used_emails.add(domain)
    name = f"{brand} {rng.choice(trades)} {rng.choice(country.legal)}"
    email = f"{rng.choice(('treasury', 'ops', 'finance', 'desk', 'admin'))}@{domain}"
    phone = _phone(rng, country)
    return CustomerData(
        type=customer_type, name=name, country=country.code, email=email, phone=phone, date_of_birth=None
    )


def _individual(rng, created_at: datetime, used_emails: set[str]) -> CustomerData:
    country = rng.choices(COUNTRIES, weights=[c.people for c in COUNTRIES])[0]
    given_names, family_names = _NAMES[country.code]
    given, family = rng.choice(given_names), rng.choice(family_names)
    age_at_signup = rng.triangular(18.2, 72, 29)
    born = created_at.date() - timedelta(days=int(age_at_signup * 365.25))
    return CustomerData(
        type=Customer.Type.INDIVIDUAL,
        name=f"{family} {given}" if country.code in FAMILY_FIRST else f"{given} {family}",
        country=country.code,
        email=_personal_email(rng, country.code, given, family, born, used_emails),
        phone=_phone(rng, country),
        date_of_birth=born,
    )


def _personal_email(rng, country: str, given: str, family: str, born: date, used: set[str]) -> str:
    first, last = _ascii(given), _ascii(family)
    patterns = (f"{first}.{last}", f"{first}{last}", f"{first}_{last}", f"{first[0]}{last}", f"{last}.{first}")
    local = rng.choice((*patterns, f"{first}.{last}{born:%y}", f"{first}{born:%y}"))
    domain = rng.choice(GLOBAL_MAIL + LOCAL_MAIL.get(country, ()))
    email = f"{local}@{domain}"
    while email in used:
        email = f"{local}{rng.randint(1, 999)}@{domain}"
    used.add(email)
    return email


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _phone(rng: random.Random, country: Country) -> str:
    code, prefixes, digits = country.phone
    return f"+{code} {rng.choice(prefixes)} {rng.randrange(10 ** (digits - 1), 10**digits)}"


# ---- prices ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Walk:
    """A mean-reverting hourly walk in log space around a realistic level."""

    level: float
    volatility: float  # per hour
    reversion: float  # share of the distance to the level closed each hour
    market_beta: float = 0.7  # how much of the move is the whole market's
    decimals: int = 2


WALKS = {
    "BTC": Walk(90_000, 0.0045, 0.002, decimals=2),
    "ETH": Walk(3_100, 0.006, 0.002, decimals=2),
    "SOL": Walk(140, 0.008, 0.002, decimals=3),
    "XRP": Walk(2.2, 0.008, 0.002, decimals=4),
    "TRX": Walk(0.28, 0.005, 0.002, decimals=5),
    "LTC": Walk(88, 0.007, 0.002, decimals=3),
    "USDT": Walk(1.0, 0.0002, 0.2, market_beta=0, decimals=6),
    "USDC": Walk(1.0, 0.0002, 0.2, market_beta=0, decimals=6),
}
PERPETUAL_PREMIUM = 0.0003  # hourly spread of the perpetual's mark around its index
FUTURE_BASIS_PER_YEAR = 0.07  # contango of the quarterly future over spot, annualised


@section("prices")
def build_prices(rng: random.Random, now: datetime, options: DemoOptions) -> str:
    """Hourly USD prices of every asset for the last seven days, and index/mark prices of the derivatives."""
    end = now.replace(minute=0, second=0, microsecond=0)
    hours = [end - timedelta(hours=h) for h in range(PRICE_HISTORY // timedelta(hours=1), -1, -1)]
    usd = price_history(rng, hours)
    asset_prices = [
        trading_risk.AssetPriceIn(asset, _decimal(value, WALKS[asset].decimals), at)
        for asset, series in usd.items()
        for at, value in zip(hours, series, strict=True)
    ]
    items = asset_prices + _derivative_prices(rng, hours, usd, quarterly_expiry(now))
    # Hours stored by an earlier load keep their prices (with another seed they would conflict).
    known = _stored_price_keys(since=hours[0])
    missing = [p for p in items if (getattr(p, "asset", None) or p.symbol, p.at) not in known]
    for start in range(0, len(missing), PRICE_BATCH):
        batch = list(enumerate(missing[start : start + PRICE_BATCH]))
        trading_risk.record_prices(
            asset_prices=[(i, p) for i, p in batch if isinstance(p, trading_risk.AssetPriceIn)],
            instrument_prices=[(i, p) for i, p in batch if isinstance(p, trading_risk.InstrumentPriceIn)],
            actor=ACTOR,
            now=now,
        )
    span = f"{hours[0]:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    kept = len(items) - len(missing)
    return f"{len(missing)} stored, {kept} already there ({len(WALKS)} assets and 2 derivatives, hourly {span})"


def _stored_price_keys(*, since: datetime) -> set[tuple[str, datetime]]:
    assets = AssetPrice.objects.filter(at__gte=since).values_list("asset", "at")
    instruments = InstrumentPrice.objects.filter(at__gte=since).values_list("instrument__symbol", "at")
    return {*assets, *instruments}


def price_history(rng: random.Random, hours: list[datetime]) -> dict[str, list[float]]:
    """Each asset's USD price at these hours, walked from PRICE_WALK_FROM (so fixed by seed and hour)."""
    market = random.Random(rng.getrandbits(64))
    own = {asset: random.Random(rng.getrandbits(64)) for asset in WALKS}
    # Start each walk in its long-run distribution, so the first days are not special.
    state = {asset: own[asset].gauss(0, w.volatility / math.sqrt(2 * w.reversion)) for asset, w in WALKS.items()}
    wanted, series = set(hours), {asset: [] for asset in WALKS}
    at = PRICE_WALK_FROM
    while at <= hours[-1]:
        shock = market.gauss(0, 1)
        for asset, w in WALKS.items():
            move = w.market_beta * shock + math.sqrt(1 - w.market_beta**2) * own[asset].gauss(0, 1)
            state[asset] = state[asset] * (1 - w.reversion) + w.volatility * move
            if at in wanted:
                series[asset].append(w.level * math.exp(state[asset]))
        at += timedelta(hours=1)
    return series


def _derivative_prices(rng, hours, usd, expires) -> list[trading_risk.InstrumentPriceIn]:
    salt, future, prices = rng.getrandbits(64), future_symbol(expires), []
    for i, at in enumerate(hours):
        # Seeded by the hour itself, so an hour's premium is the same in every run.
        premium = random.Random(f"{salt}:{at:%Y%m%d%H}")
        btc = usd["BTC"][i]
        index = btc / usd["USDT"][i]
        mark = index * (1 + premium.gauss(0, PERPETUAL_PREMIUM))
        prices.append(trading_risk.InstrumentPriceIn(PERPETUAL, _decimal(index, 2), _decimal(mark, 2), at))
        basis = FUTURE_BASIS_PER_YEAR * ((expires - at) / timedelta(days=365)) + premium.gauss(0, PERPETUAL_PREMIUM)
        prices.append(trading_risk.InstrumentPriceIn(future, _decimal(btc, 2), _decimal(btc * (1 + basis), 2), at))
    return prices


def _decimal(value: float, decimals: int) -> Decimal:
    return Decimal(f"{value:.{decimals}f}")
