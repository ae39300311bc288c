"""Synthetic nightly drops for ruledger, at any size, byte for byte the same from one seed.

    python samples/generate.py OUT_DIR --transactions N [--seed S] [--format parquet|csv]
                               [--nights K] [--every DAYS] [--paid PERCENT]
                               [--as-of 2026-03-02] [--expected]

writes a rule folder for the synthetic client `synth` (OUT_DIR/rules/synth/) and K
nights of drops (OUT_DIR/drops/synth/<date>/), N billable lines a night, one night every
DAYS days (default 1: consecutive nights; 30 nights every 12 days make a year of history):

- customers (about N/5) in 16 profiles: German businesses, tax-exempt bodies, EU
  businesses with VAT ids (reverse charge), consumers in AT/FR/NL (OSS), and exports to
  CH, GB (GBP) and US (USD); later nights send new and changed customer rows only;
- transactions grouped into invoices (customer, currency, PO), returns as negative lines
  and whole RMA credit notes, a few lines of a category no tax rule covers (held back);
- opening_items on the first night: up to 180 days old, about half overdue and many of
  those dunned before, some credit notes, a few under dispute;
- payments, about one for every two invoices (opening items on the first night, mostly
  the previous night's invoices later, received within a week of them: PERCENT of each
  night's invoices, 45 by default, the rest stay open): by reference in messy remittance
  text, short by bank charges, partial, over, several invoices at once, with early-payment
  discount, by amount only, combinations without a reference, unidentified payers;
- disputes, open_orders (the full list every night) and fx_rates (USD and GBP to EUR);
- deliberate rejects, few (none below 2,000 lines, to stay under max_reject_ratio): a
  repeated txn_id and payment_id within a drop, a line and payments sent again on the next
  night, a payment naming an unknown customer.

Invoice numbers are predicted the way the engine assigns them (SPEC section 7): per night
in order of customer_id, currency and PO, invoices and credit notes in their own
sequence, each continuing from the highest opening item of the year. So later nights pay
invoices of earlier nights by their real numbers. `--expected` also writes the predicted
invoices (OUT_DIR/expected/synth/<date>/invoices.parquet) to compare with the engine's.

Random numbers are counter based (draw i of a named stream is a hash of the stream's key
and i, the key from `random.Random(f"{seed}/{name}")`), so columns are drawn with pyarrow
compute over whole chunks; payments, which need per-row logic, use a `random.Random` per
night. Files are written in chunks of 500,000 rows (payments 200,000) with a streaming
writer, so memory stays bounded: 10 million lines take about 1.4 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CLIENT = "synth"
PAID_WITHIN = 7  # days from an invoice to its payment, inside the 10 discount days
CHUNK_LINES = 500_000
CHUNK_PAYERS = 200_000
INVOICE_PREFIX, CREDIT_PREFIX, SEQ_WIDTH = "SY-", "SY-CN-", 7
EPOCH = dt.date(1970, 1, 1)

# --- the client's rules -----------------------------------------------------------------

EU = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
      "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")

CLIENT_YAML = """\
# Synthwerk Handels GmbH: a synthetic EU seller written by samples/generate.py.
kind: client
version: 1

client:
  id: synth
  name: "Synthwerk Handels GmbH"
  country: "DE"
  base_currency: EUR

# 30 days net, 2% discount within 10 days of the invoice date.
payment_terms:
  net_days: 30
  discount:
    percent: 2%
    days: 10

invoice_numbering:
  invoice: "SY-{year}-{seq:07}"
  credit_note: "SY-CN-{year}-{seq:07}"

rounding: half_up

sets:
  EU: [%(eu)s]

accounts:
  ar_control: "1400"
  cash: "1200"
  revenue:
    default: "8400"
    by:
      "BK-*": "8300"
      "FD-*": "8300"
      "SV-*": "8338"
      "SW-*": "8339"
      "FR-*": "8607"
  tax_payable:
    default: "1776"
    by:
      DE-STD: "1776"
      DE-RED: "1771"
      EU-RC: "1770"
      EXPORT: "1770"
      EXEMPT: "1770"
      OSS-AT-STD: "1767"
      OSS-AT-RED: "1767"
      OSS-FR-STD: "1767"
      OSS-FR-RED: "1767"
      OSS-NL-STD: "1767"
      OSS-NL-RED: "1767"
  write_off: "2400"
  discount: "8736"
  unapplied_cash: "1590"
  dunning_fees: "2700"
  interest_income: "2650"

max_reject_ratio: 0.02

aging_buckets:
  - name: current
    max_days: 0
  - name: d1_30
    max_days: 30
  - name: d31_60
    max_days: 60
  - name: d61_90
    max_days: 90
  - name: over_90
"""

TAX_YAML = """\
# German seller: exemptions on certificate, exports, intra-EU reverse charge, OSS for
# consumers in AT, FR and NL, German rates. Category "voucher" has no rule on purpose.
kind: tax
version: 1
hit_policy: first
prices_include_tax: false
rounding_level: invoice

rules:
  - id: exempt_certificate
    when: 'customer.tax_exempt and customer.exemption_id is not null'
    code: EXEMPT
    rate: 0%%
    note: "Tax-exempt supply, certificate {customer.exemption_id} (§ 4 UStG)."
  - id: export_non_eu
    when: 'ship_to_country not in EU'
    code: EXPORT
    rate: 0%%
    note: "Tax-free export to {ship_to_country} (§ 4 No. 1a, § 6 UStG)."
  - id: reverse_charge_eu_b2b
    when: '%(rc_when)s'
    code: EU-RC
    rate: 0%%
    note: "Reverse charge: VAT to be accounted for by the recipient. VAT ID {customer.vat_id}"
%(oss)s
  - id: de_reduced
    when: 'ship_to_country == "DE" and tax_category == "reduced"'
    code: DE-RED
    rate: 7%%
  - id: de_standard
    when: 'ship_to_country == "DE" and tax_category == "standard"'
    code: DE-STD
    rate: 19%%
"""

# Conditions too long for one source line.
RC_WHEN = ('ship_to_country in EU and ship_to_country != "DE" and customer.country != "DE" '
           'and customer.vat_id is not null')
OSS_WHEN = ('ship_to_country == "{country}" and customer.vat_id is null '
            'and tax_category == "{category}"')

OSS_RULE = """\
  - id: oss_%(lower)s_%(cat)s
    when: '%(when)s'
    code: OSS-%(country)s-%(short)s
    rate: %(rate)s%%
"""

MATCHING_YAML = """\
kind: matching
version: 1

allocation_order:
  components: [fees, interest, principal]
  oldest_first: true

strategies:
  # Invoice numbers in the remittance text; bank charges up to 1.00 and 1% written off.
  - id: by_reference
    type: reference
    when: 'reference is not null'
    tolerance:
      absolute: 1.00
      percent: 1%
    on_short: partial
  - id: by_amount
    type: amount
    when: 'customer_id is not null'
    tolerance:
      absolute: 0.50
    tie_break: oldest
  - id: by_combination
    type: combination
    when: 'customer_id is not null and amount <= 50000'
    max_items: 3
    tolerance:
      absolute: 0.05
"""

CREDIT_YAML = """\
kind: credit
version: 1

default_limit: 40000

exposure:
  open_items: true
  open_orders: true
  unapplied_cash: true

limit_rules:
  - id: strategic_accounts
    when: 'segment == "strategic"'
    limit: 250000
  - id: consumers
    when: 'segment == "consumer"'
    limit: 3000
  - id: new_or_small
    when: 'segment in ["new", "small"]'
    limit: 15000
  - id: outside_eu
    when: 'country not in EU'
    limit: 15000

overrides:
  - customer_id: %(override)s
    limit: 150000
    valid_until: "%(until)s"
    reason: "Synthetic seasonal override."

decisions:
  - id: over_limit
    min_utilization: 100%%
    decision: hold
  - id: near_limit
    min_utilization: 80%%
    decision: warn
otherwise: ok
"""

DUNNING_YAML = """\
kind: dunning
version: 1

grace_days: 3
min_amount: 25
min_days_between: 7
interest_from: due_date
exclude: 'customer.segment in ["intercompany", "public_sector"]'

levels:
  - id: reminder
    level: 1
    after_days: 7
    action: email
    template: "sy_reminder_{customer.country}"
  - id: dunning_letter
    level: 2
    after_days: 21
    action: letter
    template: "sy_letter_{customer.country}"
    fee:
      fixed: 5.00
    interest:
      annual_rate: 10.27%
      day_basis: act/365
  - id: final_notice
    level: 3
    after_days: 35
    action: letter
    template: "sy_final_{customer.country}"
    fee:
      percent: 1%
      cap: 40.00
    interest:
      annual_rate: 10.27%
      day_basis: act/365
    credit_hold: true
  - id: collection_agency
    level: 4
    after_days: 60
    action: collection_agency
    template: "sy_agency"
    interest:
      annual_rate: 10.27%
      day_basis: act/360
    credit_hold: true
"""

# --- the world: customer profiles, products, tax ----------------------------------------


@dataclass(frozen=True)
class Profile:
    """A kind of customer: where it is, what it bills in, and so which tax rule applies."""

    country: str
    currency: str
    regions: tuple[str, ...]
    vat_prefix: str | None
    weight: int
    legal: tuple[str, ...] = ()
    exempt: bool = False
    consumer: bool = False
    ships_abroad: bool = False  # some of its orders ship to CH (an export)


_DE = ("DE-BY", "DE-NW", "DE-BW", "DE-HE", "DE-HH", "DE-BE", "DE-SN", "DE-NI")
PROFILES = (
    Profile("DE", "EUR", _DE, "DE", 40, ("GmbH", "AG", "KG", "GmbH & Co. KG"), ships_abroad=True),
    Profile("DE", "EUR", _DE, None, 5, ("e.K.", "GbR", "OHG")),
    Profile("DE", "EUR", _DE, "DE", 2, ("e.V.", "gGmbH", "Stiftung"), exempt=True),
    Profile("AT", "EUR", ("AT-9", "AT-6", "AT-4", "AT-5"), "ATU", 6, ("GmbH", "KG")),
    Profile("FR", "EUR", ("FR-IDF", "FR-ARA", "FR-NAQ", "FR-OCC"), "FR", 6, ("SARL", "SAS", "SA")),
    Profile("NL", "EUR", ("NL-NH", "NL-ZH", "NL-UT", "NL-NB"), "NL", 5, ("B.V.", "N.V.")),
    Profile("BE", "EUR", ("BE-VAN", "BE-BRU", "BE-WHT"), "BE", 3, ("BV", "NV", "SRL")),
    Profile("IT", "EUR", ("IT-MI", "IT-RM", "IT-TO"), "IT", 3, ("S.r.l.", "S.p.A.")),
    Profile("ES", "EUR", ("ES-MD", "ES-CT", "ES-VC"), "ES", 2, ("S.L.", "S.A.")),
    Profile("PL", "EUR", ("PL-MZ", "PL-MA", "PL-DS"), "PL", 2, ("Sp. z o.o.", "S.A.")),
    Profile("AT", "EUR", ("AT-9", "AT-3"), None, 2, consumer=True),
    Profile("FR", "EUR", ("FR-IDF", "FR-PAC"), None, 2, consumer=True),
    Profile("NL", "EUR", ("NL-NH", "NL-GE"), None, 2, consumer=True),
    Profile("CH", "EUR", ("CH-ZH", "CH-GE", "CH-BE"), "CHE", 4, ("AG", "GmbH", "SA")),
    Profile("GB", "GBP", ("GB-LND", "GB-MAN", "GB-BIR"), "GB", 6, ("Ltd", "PLC", "LLP")),
    Profile("US", "USD", ("US-CA", "US-NY", "US-TX", "US-IL", "US-WA"), None, 8,
            ("Inc.", "LLC", "Corp.")),
)
CURRENCIES = ("EUR", "USD", "GBP")
FX_BASE = {"USD": 1.0835, "GBP": 0.8512}  # units of the currency for one EUR

# OSS destination rates (per mille) for consumers without a VAT id.
OSS_RATES = {"AT": (200, 100), "FR": (200, 55), "NL": (210, 90)}

CATEGORIES = ("standard", "reduced", "voucher")


@dataclass(frozen=True)
class Product:
    code: str
    description: str
    category: int  # index into CATEGORIES
    price_cents: int
    weight: int
    hourly: bool = False  # billed in half hours


PRODUCTS = (
    Product("TL-1002", "Drehmomentschlüssel 40-200 Nm", 0, 18900, 6),
    Product("TL-1107", "Akku-Bohrschrauber 18 V", 0, 24990, 5),
    Product("TL-1210", "Werkzeugwagen, 7 Schubladen", 0, 64900, 2),
    Product("TL-0005", "Unterlegscheibe M8, Stück", 0, 35, 4),
    Product("TL-0012", "Sechskantschraube M10x40, 100 Stück", 0, 1290, 6),
    Product("AS-2001", "Schutzhandschuhe Gr. 9, 10 Paar", 0, 1850, 8),
    Product("AS-2050", "Schutzbrille, 12er Pack", 0, 3600, 5),
    Product("AS-2100", "Industriehelm Typ I", 0, 2150, 4),
    Product("EL-3140", "Mantelleitung NYM-J 3x1,5 mm², 100 m", 0, 12999, 4),
    Product("EL-3220", "LED-Hallenleuchte 150 W", 0, 18950, 3),
    Product("BK-4001", "Tabellenbuch Metall, 48. Auflage", 1, 3980, 3),
    Product("BK-4010", "Fachkunde Elektrotechnik", 1, 4650, 2),
    Product("FD-5001", "Kaffee, 1 kg", 1, 1690, 4),
    Product("FD-5020", "Mineralwasser, Kiste 12 x 1 l", 1, 790, 3),
    Product("SV-6001", "Montage vor Ort, je Stunde", 0, 9500, 4, hourly=True),
    Product("SV-6010", "Wartung Druckluftanlage, je Stunde", 0, 11800, 2, hourly=True),
    Product("SW-7001", "Lagerverwaltung, Lizenz je Monat", 0, 4900, 2),
    Product("FR-8001", "Fracht, Stückgut", 0, 8500, 3),
)
VOUCHER = Product("GC-9001", "Geschenkgutschein", 2, 5000, 0)  # no tax rule: held back
ALL_PRODUCTS = (*PRODUCTS, VOUCHER)

TAX_CODES = ("EXEMPT", "EXPORT", "EU-RC", "OSS-AT-STD", "OSS-AT-RED", "OSS-FR-STD",
             "OSS-FR-RED", "OSS-NL-STD", "OSS-NL-RED", "DE-RED", "DE-STD")
TAX_PERMILLE = (0, 0, 0, 200, 100, 200, 55, 210, 90, 70, 190)


def tax_code(profile: Profile, ship_to: str | None, category: str) -> int:
    """The code tax.yaml gives a line (index into TAX_CODES), or -1 when no rule matches
    and the engine holds the line back. Mirrors TAX_YAML rule by rule, in order."""
    ship = ship_to or profile.country
    has_vat = profile.vat_prefix is not None
    if profile.exempt:
        return TAX_CODES.index("EXEMPT")
    if ship not in EU:
        return TAX_CODES.index("EXPORT")
    if ship != "DE" and profile.country != "DE" and has_vat:
        return TAX_CODES.index("EU-RC")
    if ship in OSS_RATES and not has_vat and category in ("standard", "reduced"):
        short = "STD" if category == "standard" else "RED"
        return TAX_CODES.index(f"OSS-{ship}-{short}")
    if ship == "DE" and category in ("standard", "reduced"):
        return TAX_CODES.index("DE-STD" if category == "standard" else "DE-RED")
    return -1


SHIP_TO = (None, "CH")  # a line's ship_to_country: the customer's own, or an export to CH


def tax_lookup() -> pa.Array:
    """The code of every (profile, ship_to, category), flat: key = (p * 2 + s) * 3 + c."""
    return pa.array([tax_code(p, s, c) for p in PROFILES for s in SHIP_TO for c in CATEGORIES],
                    pa.int64())


SEGMENTS = ("standard",) * 70 + ("small",) * 12 + ("new",) * 10 + ("strategic",) * 5 \
    + ("intercompany",) * 3
TERMS = (None,) * 14 + (14, 45, 60, 60)  # payment_terms_days; None: the client's 30
GROUP_SIZES = (1,) * 20 + (2,) * 20 + (3,) * 15 + (4,) * 15 + (5,) * 10 + (6,) * 8 \
    + (8,) * 6 + (12,) * 4 + (20,) * 2
QUANTITIES = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12, 20, 25)
# Opening items' age in days: 1-40 (65%), 41-80 (22%), 81-180 (13%).
AGE_STARTS, AGE_SPANS = (1, 41, 81), (40, 40, 100)
AGE_BUCKETS = (0,) * 65 + (1,) * 22 + (2,) * 13
OPENING_COUNTS = (0,) * 20 + (1,) * 35 + (2,) * 25 + (3,) * 12 + (4,) * 8
WORDS_A = ("Nord", "Alpen", "Rhein", "Atlas", "Delta", "Falken", "Hansa", "Kessler", "Lindner",
           "Meridian", "Orion", "Polar", "Quadrat", "Sonnen", "Vogt", "Weber", "Zeller",
           "Baltic", "Cobalt", "Granit", "Müller", "Krüger")
WORDS_B = ("Technik", "Logistik", "Bau", "Maschinenbau", "Elektro", "Handel", "Metall",
           "Werkzeuge", "Systems", "Industries", "Trading", "Services", "Components",
           "Automation")
FIRST = ("Maria", "Jan", "Sophie", "Lukas", "Emma", "Pierre", "Anouk", "Clara", "Felix",
         "Léa", "Noah", "Eva")
LAST = ("Huber", "Dubois", "de Vries", "Schneider", "Martin", "Bakker", "Gruber", "Bernard",
        "Jansen", "Wagner", "Petit", "Visser")
DISPUTE_REASONS = ("Lieferung unvollständig", "Preis weicht vom Angebot ab",
                   "Ware beschädigt angekommen", "Doppelt berechnet", "Leistung nicht erbracht")
NO_NUMBER_TEXTS = (None, None, "Zahlung lt. Vereinbarung", "Sammelueberweisung", "payment",
                   "Ihre Rechnung vom Monatsanfang", "virement fournisseur", "betaling factuur")

# --- arrow helpers ----------------------------------------------------------------------

_ARANGE: list[pa.Array] = [pa.array([], pa.int64())]


def arange(start: int, count: int) -> pa.Array:
    """start, start+1, ... as int64 (one cached range, shifted)."""
    if len(_ARANGE[0]) < count:
        _ARANGE[0] = pa.array(range(max(count, 2 * len(_ARANGE[0]))), pa.int64())
    return pc.add(_ARANGE[0].slice(0, count), start)


def take(values: tuple | list | pa.Array, indices: pa.Array, typ: pa.DataType | None = None
         ) -> pa.Array:
    """values[indices], values given as a Python sequence or an array."""
    if not isinstance(values, pa.Array):
        values = pa.array(values, typ)
    return pc.take(values, indices)


def decimal(units: pa.Array, scale: int) -> pa.Array:
    """Integers in units of 10^-scale (cents: scale 2) as decimal128(18, scale), exactly:
    the cast keeps the integer, and the view only moves the decimal point."""
    if isinstance(units, pa.ChunkedArray):
        units = units.combine_chunks()
    whole = pc.cast(units, pa.decimal128(38, 0))
    return pa.Array.from_buffers(pa.decimal128(18, scale), len(whole), whole.buffers(),
                                 null_count=whole.null_count)


def dates(ordinals: pa.Array) -> pa.Array:
    """Days since 1970-01-01 as date32."""
    return pc.cast(pc.cast(ordinals, pa.int32()), pa.date32())


def numbered(prefix: str, numbers: pa.Array, width: int) -> pa.Array:
    """prefix + the number zero-padded to width (more digits stay whole)."""
    text = pc.utf8_lpad(pc.cast(numbers, pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, text, "")


def div_half_up(values: pa.Array, divisor: int) -> pa.Array:
    """values / divisor rounded half away from zero, like DuckDB's ROUND on decimals."""
    magnitude = pc.divide(pc.add(pc.abs(values), divisor // 2), divisor)
    return pc.if_else(pc.less(values, 0), pc.negate(magnitude), magnitude)


def ordinal(day: dt.date) -> int:
    return (day - EPOCH).days


def expand(counts: pa.Array) -> pa.Array:
    """For counts [2, 0, 1]: [0, 0, 2], the index of the count each element belongs to."""
    offsets = pc.cumulative_sum(pa.concat_arrays([pa.array([0], pa.int64()),
                                                  pc.cast(counts, pa.int64())]))
    total = offsets[-1].as_py()
    lists = pa.LargeListArray.from_arrays(offsets, pa.nulls(total, pa.int8()))
    return pc.list_parent_indices(lists)


# --- counter-based random numbers -------------------------------------------------------

_GOLDEN = pa.scalar(0x9E3779B97F4A7C15, pa.uint64())
_MIX1 = pa.scalar(0xFF51AFD7ED558CCD, pa.uint64())
_MIX2 = pa.scalar(0xC4CEB9FE1A85EC53, pa.uint64())


def u64(value: int) -> pa.Scalar:
    """An unsigned operand: with a plain int, pyarrow would cast the uint64 side to int64."""
    return pa.scalar(value, pa.uint64())


class Stream:
    """A named stream of random numbers: draw i is murmur3's finalizer of key + i * golden.

    Any draw can be taken for any index, in any order, so chunks and selections of rows
    see the same numbers whatever the chunk size; and every column has its own stream,
    so adding a column never shifts the others."""

    def __init__(self, seed: int, *name: object):
        self.key = pa.scalar(random.Random(f"{seed}/" + "/".join(map(str, name))).getrandbits(64),
                             pa.uint64())

    def bits(self, index: pa.Array) -> pa.Array:
        x = pc.add(pc.multiply(pc.cast(index, pa.uint64()), _GOLDEN), self.key)
        for mult in (_MIX1, _MIX2):
            x = pc.bit_wise_xor(x, pc.shift_right(x, u64(33)))
            x = pc.multiply(x, mult)
        return pc.bit_wise_xor(x, pc.shift_right(x, u64(33)))

    def below(self, n: int | pa.Array, index: pa.Array) -> pa.Array:
        """Uniform in [0, n) (n below 2^32, a number or one per row), as int64."""
        high = pc.shift_right(self.bits(index), u64(32))
        n = u64(n) if isinstance(n, int) else pc.cast(n, pa.uint64())
        return pc.cast(pc.shift_right(pc.multiply(high, n), u64(32)), pa.int64())

    def chance(self, p: float, index: pa.Array) -> pa.Array:
        return pc.less(self.below(1_000_000, index), int(p * 1_000_000))

    def pick(self, values: tuple | list, index: pa.Array, typ: pa.DataType | None = None
             ) -> pa.Array:
        return take(values, self.below(len(values), index), typ)


def streams(seed: int, *prefix: object) -> Callable[[str], Stream]:
    """The streams of one part of the data, by column name."""
    return lambda name: Stream(seed, *prefix, name)


def weighted(items: tuple, weights: list[int]) -> tuple:
    """items repeated by weight: a uniform pick from it is a weighted pick."""
    return tuple(i for i, w in zip(items, weights, strict=True) for _ in range(w))


# --- output files -----------------------------------------------------------------------

SCHEMAS = {
    "customers": pa.schema([
        ("customer_id", pa.string()), ("name", pa.string()), ("country", pa.string()),
        ("region", pa.string()), ("segment", pa.string()), ("currency", pa.string()),
        ("payment_terms_days", pa.int64()), ("vat_id", pa.string()),
        ("tax_exempt", pa.bool_()), ("exemption_id", pa.string()), ("email", pa.string())]),
    "transactions": pa.schema([
        ("txn_id", pa.string()), ("customer_id", pa.string()), ("txn_date", pa.date32()),
        ("product_code", pa.string()), ("description", pa.string()),
        ("quantity", pa.decimal128(18, 1)), ("unit_price", pa.decimal128(18, 2)),
        ("currency", pa.string()), ("tax_category", pa.string()), ("po_number", pa.string()),
        ("ship_to_country", pa.string()), ("ship_to_region", pa.string())]),
    "payments": pa.schema([
        ("payment_id", pa.string()), ("received_on", pa.date32()),
        ("amount", pa.decimal128(18, 2)), ("currency", pa.string()),
        ("customer_id", pa.string()), ("payer_name", pa.string()), ("reference", pa.string())]),
    "opening_items": pa.schema([
        ("invoice_id", pa.string()), ("customer_id", pa.string()),
        ("invoice_date", pa.date32()), ("due_date", pa.date32()), ("currency", pa.string()),
        ("amount_open", pa.decimal128(18, 2)), ("dunning_level", pa.int64()),
        ("last_dunned_on", pa.date32())]),
    "disputes": pa.schema([
        ("invoice_id", pa.string()), ("opened_on", pa.date32()), ("status", pa.string()),
        ("reason", pa.string())]),
    "open_orders": pa.schema([
        ("order_id", pa.string()), ("customer_id", pa.string()), ("currency", pa.string()),
        ("amount", pa.decimal128(18, 2))]),
    "fx_rates": pa.schema([
        ("rate_date", pa.date32()), ("from_currency", pa.string()),
        ("to_currency", pa.string()), ("rate", pa.decimal128(18, 8))]),
    "invoices": pa.schema([
        ("invoice_id", pa.string()), ("document_type", pa.string()),
        ("customer_id", pa.string()), ("currency", pa.string()),
        ("gross_amount", pa.decimal128(18, 2))]),
}


class Sink:
    """One table file written chunk by chunk (Parquet row groups or CSV batches), so a
    drop of any size is never whole in memory; says rows and bytes on stderr when done."""

    def __init__(self, path: Path, table: str, fmt: str, root: Path):
        self.path, self.root, self.rows = path, root, 0
        self.schema = SCHEMAS[table]
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            self.writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        else:
            self.writer = pacsv.CSVWriter(path, self.schema,
                                          write_options=pacsv.WriteOptions(
                                              quoting_style="needed"))

    def write(self, columns: dict[str, pa.Array]) -> None:
        table = pa.table(columns, schema=self.schema)
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()
        name = self.path.relative_to(self.root)
        print(f"{name}: {self.rows:,} rows, {self.path.stat().st_size:,} bytes", file=sys.stderr)


def write_table(folder: Path, table: str, fmt: str, root: Path,
                chunks: Iterator[dict[str, pa.Array]]) -> None:
    sink = Sink(folder / f"{table}.{fmt}", table, fmt, root)
    for columns in chunks:
        sink.write(columns)
    sink.close()


# --- customers --------------------------------------------------------------------------


@dataclass
class Customers:
    """What later stages need of every customer: its profile and payment terms."""

    seed: int
    count: list[int]  # customers known on each night (night 0 first)
    profile: pa.Array = field(init=False)
    terms: pa.Array = field(init=False)

    def __post_init__(self):
        index = arange(0, self.count[-1])
        pick = weighted(tuple(range(len(PROFILES))), [p.weight for p in PROFILES])
        self.profile = Stream(self.seed, "customer", "profile").pick(pick, index, pa.int64())
        self.terms = Stream(self.seed, "customer", "terms").pick(TERMS, index, pa.int64())

    def ids(self, index: pa.Array) -> pa.Array:
        return numbered("K", index, 8)

    def currency(self, index: pa.Array) -> pa.Array:
        return take([p.currency for p in PROFILES], pc.take(self.profile, index))

    def names(self, index: pa.Array) -> pa.Array:
        """Businesses: two words and a legal form of the country; consumers: a person."""
        profile = pc.take(self.profile, index)
        s = streams(self.seed, "customer")
        legal_all = [f for p in PROFILES for f in (p.legal or ("",))]
        starts, sizes = _spans([p.legal or ("",) for p in PROFILES])
        which = pc.add(take(starts, profile), s("legal").below(take(sizes, profile), index))
        business = pc.binary_join_element_wise(s("name").pick(WORDS_A, index),
                                               s("name_b").pick(WORDS_B, index),
                                               take(legal_all, which), " ")
        person = pc.binary_join_element_wise(s("first").pick(FIRST, index),
                                             s("last").pick(LAST, index), " ")
        consumer = take([p.consumer for p in PROFILES], profile)
        return pc.if_else(consumer, person, business)

    def rows(self, index: pa.Array) -> dict[str, pa.Array]:
        """The customers rows of `index`, as the first night sends them."""
        profile = pc.take(self.profile, index)
        s = streams(self.seed, "customer")
        regions_all = [r for p in PROFILES for r in p.regions]
        starts, sizes = _spans([p.regions for p in PROFILES])
        region = take(regions_all, pc.add(take(starts, profile),
                                          s("region").below(take(sizes, profile), index)))
        ids = self.ids(index)
        has_vat = pc.is_valid(take([p.vat_prefix for p in PROFILES], profile))
        vat = pc.binary_join_element_wise(take([p.vat_prefix for p in PROFILES], profile),
                                          pc.cast(pc.add(s("vat").below(900_000_000, index),
                                                         100_000_000), pa.string()), "")
        exempt = take([p.exempt for p in PROFILES], profile)
        consumer = take([p.consumer for p in PROFILES], profile)
        segment = pc.if_else(consumer, "consumer", pc.if_else(
            exempt, "public_sector", s("segment").pick(SEGMENTS, index)))
        return {
            "customer_id": ids, "name": self.names(index),
            "country": take([p.country for p in PROFILES], profile), "region": region,
            "segment": segment, "currency": self.currency(index),
            "payment_terms_days": pc.take(self.terms, index),
            "vat_id": pc.if_else(has_vat, vat, pa.scalar(None, pa.string())),
            "tax_exempt": exempt,
            "exemption_id": pc.if_else(exempt, numbered("FSA-", s("cert").below(
                10**6, index), 6), pa.scalar(None, pa.string())),
            "email": pc.binary_join_element_wise("ap-", pc.utf8_lower(ids), "@",
                                                 pc.utf8_lower(s("mail").pick(WORDS_B, index)),
                                                 ".example", ""),
        }

    def changed(self, index: pa.Array, night: int) -> dict[str, pa.Array]:
        """Changed rows of a later night: a new e-mail address; new accounts grow up."""
        rows = self.rows(index)
        rows["email"] = pc.binary_join_element_wise("billing-", pc.utf8_lower(
            rows["customer_id"]), f"-{night}@mail.example", "")
        rows["segment"] = pc.if_else(pc.equal(rows["segment"], "new"), "standard",
                                     rows["segment"])
        return rows


def _spans(groups: list[tuple]) -> tuple[list[int], list[int]]:
    """Start and size of each group in the groups laid end to end."""
    starts, at = [], 0
    for g in groups:
        starts.append(at)
        at += len(g)
    return starts, [len(g) for g in groups]


def customer_chunks(customers: Customers, night: int) -> Iterator[dict[str, pa.Array]]:
    """Night 0: every customer. Later: the new customers and a few changed ones."""
    if night == 0:
        for start in range(0, customers.count[0], CHUNK_LINES):
            yield customers.rows(arange(start, min(CHUNK_LINES, customers.count[0] - start)))
        return
    before, now = customers.count[night - 1], customers.count[night]
    yield customers.rows(arange(before, now - before))
    picked = Stream(customers.seed, "customer", "changed", night).chance(
        0.002, arange(0, before))
    yield customers.changed(pc.cast(pc.indices_nonzero(picked), pa.int64()), night)


# --- opening items ----------------------------------------------------------------------


@dataclass
class Opening:
    """The items carried over on the first night, sorted by customer; `first` and `count`
    give each customer's run of items. Payments pay them by their ids."""

    customer: pa.Array
    invoice_id: pa.Array
    amount: pa.Array  # cents
    invoice_date: pa.Array  # ordinals
    due: pa.Array
    level: pa.Array
    last_dunned: pa.Array
    first: pa.Array  # per customer
    count: pa.Array
    last_seq: dict[tuple[str, int], int]  # (series, year) -> highest number used

    def chunks(self, customers: Customers) -> Iterator[dict[str, pa.Array]]:
        for start in range(0, len(self.customer), CHUNK_LINES):
            part = slice(start, start + CHUNK_LINES)
            customer = self.customer[part]
            yield {
                "invoice_id": self.invoice_id[part], "customer_id": customers.ids(customer),
                "invoice_date": dates(self.invoice_date[part]), "due_date": dates(self.due[part]),
                "currency": customers.currency(customer),
                "amount_open": decimal(self.amount[part], 2), "dunning_level": self.level[part],
                "last_dunned_on": dates(self.last_dunned[part])}


def build_opening(seed: int, customers: Customers, as_of: dt.date) -> Opening:
    """0 to 4 items for most customers, up to 180 days old, in the customer's currency; the
    older ones past due, some already dunned once or twice; one in 200 a credit note.
    Numbers follow invoice date within each series and year, with gaps for items paid."""
    n = customers.count[0]
    counts = Stream(seed, "opening", "count").pick(OPENING_COUNTS, arange(0, n), pa.int64())
    customer = expand(counts)
    index = arange(0, len(customer))
    s = streams(seed, "opening")
    today = ordinal(as_of)
    bucket = s("age_bucket").pick(AGE_BUCKETS, index, pa.int64())
    age = pc.add(take(AGE_STARTS, bucket, pa.int64()),
                 s("age").below(take(AGE_SPANS, bucket, pa.int64()), index))
    invoice_date = pc.subtract(today, age)
    terms = pc.fill_null(pc.take(customers.terms, customer), 30)
    due = pc.add(invoice_date, terms)
    credit = s("credit").chance(0.005, index)
    amount = amounts_cents(s("amount"), index, 1500, 2_500_000)
    amount = pc.if_else(credit, pc.negate(pc.divide(amount, 5)), amount)
    level, last = opening_dunning(s, index, pc.subtract(today, due), due, credit)
    ids, last_seq = opening_numbers(invoice_date, credit)
    first = pc.subtract(pc.cumulative_sum(counts), counts)
    return Opening(customer, ids, amount, invoice_date, due, level, last, first, counts,
                   last_seq)


def amounts_cents(stream: Stream, index: pa.Array, low: int, high: int) -> pa.Array:
    """Log-uniform amounts between low and high cents, with random cents: the high half
    of each draw picks the step, the low half the cents."""
    steps = 1024
    table = [int(low * (high / low) ** (i / (steps - 1))) // 100 * 100 for i in range(steps)]
    bits = stream.bits(index)
    step = pc.shift_right(pc.multiply(pc.shift_right(bits, u64(32)), u64(steps)), u64(32))
    cents = pc.shift_right(pc.multiply(pc.bit_wise_and(bits, u64(0xFFFFFFFF)), u64(100)),
                           u64(32))
    return pc.add(take(table, step, pa.int64()), pc.cast(cents, pa.int64()))


def opening_dunning(s: Callable[[str], Stream], index: pa.Array, past_due: pa.Array,
                    due: pa.Array, credit: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Level 1 ten days past due (7 + grace 3), 2 at 24, 3 at 38, with the date it was
    reached; some overdue items were never dunned. Credit notes are not dunned."""
    u = s("dunned").below(100, index)
    level = pa.array([0] * len(index), pa.int64())
    last = pa.nulls(len(index), pa.int64())
    for lvl, days, share in ((1, 17, 60), (2, 31, 45), (3, 45, 30)):
        reached = pc.and_(pc.greater_equal(past_due, days), pc.less(u, share))
        level = pc.if_else(reached, lvl, level)
        last = pc.if_else(reached, pc.add(due, days - 7), last)
    level = pc.if_else(credit, 0, level)
    return level, pc.if_else(credit, pa.scalar(None, pa.int64()), last)


def opening_numbers(invoice_date: pa.Array, credit: pa.Array
                    ) -> tuple[pa.Array, dict[tuple[str, int], int]]:
    """Invoice ids by date within series and year: SY-2026-0000004, SY-CN-2025-0000001."""
    years = pc.year(dates(invoice_date))
    order = pc.sort_indices(pa.table({"c": credit, "y": years, "d": invoice_date,
                                      "i": arange(0, len(credit))}),
                            sort_keys=[("c", "ascending"), ("y", "ascending"),
                                       ("d", "ascending"), ("i", "ascending")])
    series_of = pc.take(credit, order)
    year_of = pc.take(years, order)
    position = arange(0, len(order))
    seq = pa.nulls(len(order), pa.int64())
    last: dict[tuple[str, int], int] = {}
    for is_credit in (False, True):
        for year in sorted(set(years.to_pylist())):
            mask = pc.and_(pc.equal(series_of, is_credit), pc.equal(year_of, year))
            start = pc.min(pc.filter(position, mask)).as_py()
            if start is None:
                continue
            gapped = pc.add(pc.divide(pc.multiply(pc.subtract(position, start), 4), 3), 1)
            seq = pc.if_else(mask, gapped, seq)
            last[("credit_note" if is_credit else "invoice", year)] = \
                pc.max(pc.filter(gapped, mask)).as_py()
    prefix = pc.if_else(series_of, CREDIT_PREFIX, INVOICE_PREFIX)
    text = pc.binary_join_element_wise(prefix, pc.cast(year_of, pa.string()), "-", "")
    ids_sorted = pc.binary_join_element_wise(
        text, pc.utf8_lpad(pc.cast(seq, pa.string()), width=SEQ_WIDTH, padding="0"), "")
    return pc.take(ids_sorted, pc.sort_indices(order)), last


# --- a night's billable lines and the invoices they make ----------------------------------


@dataclass
class Groups:
    """The night's invoices-to-be, one per (customer, currency, PO), in the engine's
    numbering order; `offsets` are each group's first line."""

    customer: pa.Array
    po: pa.Array
    rma: pa.Array
    ship: pa.Array  # index into SHIP_TO
    offsets: pa.Array


def plan_groups(seed: int, night: int, lines: int, customers: Customers) -> Groups:
    """Sizes until `lines` are placed; a customer per group; a PO for all but (often) a
    customer's first group; 2% RMA credit groups; some German orders ship to CH. Sorted
    by customer and PO as DuckDB sorts them (bytewise; '' before any PO)."""
    s = streams(seed, "groups", night)
    estimate = lines // 4 + 16
    while True:
        sizes = s("size").pick(GROUP_SIZES, arange(0, estimate), pa.int64())
        ends = pc.cumulative_sum(sizes)
        if ends[-1].as_py() >= lines:
            break
        estimate *= 2
    count = pc.sum(pc.less(ends, lines)).as_py() + 1
    sizes = sizes.slice(0, count)
    sizes = pa.concat_arrays([sizes.slice(0, count - 1), pa.array(
        [lines - (ends[count - 2].as_py() if count > 1 else 0)], pa.int64())])
    index = arange(0, count)
    drawn = s("customer").below(customers.count[night], index)
    customer = pc.take(drawn, pc.sort_indices(drawn))
    first = pc.not_equal(customer, pa.concat_arrays([pa.array([-1], pa.int64()),
                                                     customer.slice(0, count - 1)]))
    rma = s("rma").chance(0.02, index)
    blank = pc.and_(pc.and_(first, pc.invert(rma)), s("blank").chance(0.45, index))
    po = pc.if_else(rma, numbered(f"RMA-{night:02d}", index, 7),
                    numbered(f"45{night:02d}", index, 7))
    po = pc.if_else(blank, pa.scalar(None, pa.string()), po)
    abroad = take([p.ships_abroad for p in PROFILES], pc.take(customers.profile, customer))
    ship = pc.cast(pc.and_(abroad, s("ship").chance(0.04, index)), pa.int64())
    order = pc.sort_indices(pa.table({"c": customer, "p": pc.fill_null(po, "")}),
                            sort_keys=[("c", "ascending"), ("p", "ascending")])
    offsets = pc.cumulative_sum(pa.concat_arrays([pa.array([0], pa.int64()), sizes]))
    return Groups(pc.take(customer, order), pc.take(po, order), pc.take(rma, order),
                  pc.take(ship, order), offsets)


def line_chunks(groups: Groups) -> Iterator[tuple[int, int]]:
    """Runs of whole groups of about CHUNK_LINES lines: an invoice never spans chunks."""
    total = len(groups.offsets) - 1
    start = 0
    while start < total:
        target = groups.offsets[start].as_py() + CHUNK_LINES
        end = start + max(1, pc.sum(pc.less_equal(groups.offsets.slice(start + 1), target))
                          .as_py())
        if groups.offsets[-1].as_py() - groups.offsets[min(end, total)].as_py() \
                < CHUNK_LINES // 4:
            end = total  # a short tail goes with this chunk
        yield start, min(end, total)
        start = min(end, total)


@dataclass
class Lines:
    """One chunk of lines: the file's columns and what predicting the invoices needs."""

    columns: dict[str, pa.Array]
    group: pa.Array
    code: pa.Array  # -1: held back
    net: pa.Array  # cents


PRODUCT_PICK = weighted(tuple(range(len(PRODUCTS))), [p.weight for p in PRODUCTS])
TAX_LOOKUP = tax_lookup()


def make_lines(seed: int, night: int, day: dt.date, groups: Groups, start: int, end: int,
               customers: Customers) -> Lines:
    """The lines of groups [start, end): products from the catalogue, whole quantities
    (half hours for services), returns negative, 1 in 10,000 a voucher nobody can tax."""
    sizes = pc.subtract(groups.offsets.slice(start + 1, end - start),
                        groups.offsets.slice(start, end - start))
    group = pc.add(expand(sizes), start)
    first_line = groups.offsets[start].as_py()
    index = arange(first_line, len(group))
    s = streams(seed, "lines", night)
    customer = pc.take(groups.customer, group)
    profile = pc.take(customers.profile, customer)
    product = s("product").pick(PRODUCT_PICK, index, pa.int64())
    product = pc.if_else(s("voucher").chance(0.0001, index), len(PRODUCTS), product)
    hourly = take([p.hourly for p in ALL_PRODUCTS], product)
    qty10 = pc.if_else(hourly, pc.multiply(pc.add(s("hours").below(16, index), 1), 5),
                       pc.multiply(s("qty").pick(QUANTITIES, index, pa.int64()), 10))
    position = pc.subtract(index, pc.take(groups.offsets, group))
    returned = pc.or_(pc.take(groups.rma, group),
                      pc.and_(pc.greater(position, 0), s("return").chance(0.02, index)))
    consumer = take([p.consumer for p in PROFILES], profile)
    qty10 = pc.if_else(consumer, pc.min_element_wise(qty10, 20), qty10)  # a person buys few
    qty10 = pc.if_else(returned, pc.negate(qty10), qty10)
    price = take([p.price_cents for p in ALL_PRODUCTS], product, pa.int64())
    net = div_half_up(pc.multiply(qty10, price), 10)
    category = take([p.category for p in ALL_PRODUCTS], product, pa.int64())
    ship = pc.take(groups.ship, group)
    code = pc.take(TAX_LOOKUP, pc.add(pc.multiply(pc.add(pc.multiply(profile, 2), ship), 3),
                                      category))
    written_category = pc.if_else(
        pc.and_(pc.equal(category, 0), s("nocat").chance(0.1, index)),
        pa.scalar(None, pa.string()), take(CATEGORIES, category))
    columns = {
        "txn_id": numbered(f"T{day:%Y%m%d}-", index, 9),
        "customer_id": customers.ids(customer),
        "txn_date": dates(pc.subtract(ordinal(day), s("age").below(8, index))),
        "product_code": take([p.code for p in ALL_PRODUCTS], product),
        "description": take([p.description for p in ALL_PRODUCTS], product),
        "quantity": decimal(qty10, 1), "unit_price": decimal(price, 2),
        "currency": customers.currency(customer), "tax_category": written_category,
        "po_number": pc.take(groups.po, group),
        "ship_to_country": take(SHIP_TO, ship, pa.string()),
        "ship_to_region": pa.nulls(len(group), pa.string()),
    }
    return Lines(columns, group, code, net)


def invoice_totals(lines: Lines) -> pa.Table:
    """Gross per group as the engine computes it: tax rounded once per invoice, code and
    rate (rounding_level: invoice), held lines left out; groups of held lines only vanish."""
    kept = pc.greater_equal(lines.code, 0)
    by_code = pa.table({"g": pc.filter(lines.group, kept), "code": pc.filter(lines.code, kept),
                        "net": pc.filter(lines.net, kept)}).group_by(
        ["g", "code"], use_threads=False).aggregate([("net", "sum")])
    rate = pc.take(pa.array(TAX_PERMILLE, pa.int64()), by_code["code"])
    tax = div_half_up(pc.multiply(by_code["net_sum"], rate), 1000)
    per_group = pa.table({"g": by_code["g"], "gross": pc.add(by_code["net_sum"], tax)}).group_by(
        "g", use_threads=False).aggregate([("gross", "sum")])
    return per_group.sort_by("g")


@dataclass
class Ledger:
    """The engine's invoice number sequences, per series and year, as the engine keeps them."""

    last: dict[tuple[str, int], int]

    def number(self, totals: pa.Table, year: int) -> tuple[pa.Array, pa.Array]:
        """Numbers of a chunk's invoices in order (gross < 0: a credit note), and the flag."""
        credit = pc.less(totals["gross_sum"], 0)
        numbers = pa.nulls(totals.num_rows, pa.string())
        for series, prefix, mask in (("invoice", INVOICE_PREFIX, pc.invert(credit)),
                                     ("credit_note", CREDIT_PREFIX, credit)):
            last = self.last.get((series, year), 0)
            seq = pc.add(pc.cumulative_sum(pc.cast(mask, pa.int64())), last)
            numbers = pc.if_else(mask, numbered(f"{prefix}{year}-", seq, SEQ_WIDTH), numbers)
            self.last[(series, year)] = last + pc.sum(pc.cast(mask, pa.int64())).as_py()
        return numbers, credit


# --- payments ---------------------------------------------------------------------------


@dataclass
class Payable:
    """Items a later night pays (or disputes): tonight's invoices, picked at random, kept
    as Arrow tables (customer, invoice_id, gross) in customer order."""

    parts: list[pa.Table] = field(default_factory=list)
    disputed: list[str] = field(default_factory=list)

    def add(self, customer: pa.Array, ids: pa.Array, gross: pa.Array, pay: pa.Array,
            dispute: pa.Array) -> None:
        self.parts.append(pa.table({"customer": pc.filter(customer, pay),
                                    "invoice_id": pc.filter(ids, pay),
                                    "gross": pc.filter(gross, pay)}))
        self.disputed += pc.filter(ids, dispute).to_pylist()

    def slices(self, size: int) -> Iterator[pa.Table]:
        """About `size` rows at a time, never splitting one customer's invoices."""
        if not self.parts:
            return
        table = pa.concat_tables(self.parts).combine_chunks()
        customer = table["customer"]
        at = 0
        while at < table.num_rows:
            end = min(at + size, table.num_rows)
            while end < table.num_rows and customer[end] == customer[end - 1]:
                end += 1
            yield table.slice(at, end - at)
            at = end


def messy(invoice_id: str, rng: random.Random) -> str:
    """An invoice number as people type it: spaces, dashes, slashes, case, 'inv#'."""
    prefix, *rest = invoice_id.split("-")
    year, seq = rest[-2], rest[-1]
    middle = "-".join(rest[:-2])
    letters = prefix + ("-" + middle if middle else "")
    forms = (f"{invoice_id}", f"{letters.lower()} {year} {seq}", f"inv#{letters}{year}{seq}",
             f"{letters}/{year}/{seq}", f"{letters}{year}-{seq}", f"{letters} {year} - {seq}",
             f"INV {invoice_id}", f"{letters.lower()}_{year}_{seq}")
    return rng.choice(forms)


SENTENCES = ("{}", "{}", "Rechnung {} danke", "facture {} merci", "payment for invoice {}",
             "RE: {}", "Zahlung {} abzgl. Gebuehren", "factuur {} / bankkosten")


def reference(ids: list[str], rng: random.Random) -> str:
    joined = rng.choice((" / ", ", ", " & ", " + ")).join(messy(i, rng) for i in ids)
    return rng.choice(SENTENCES).format(joined)


@dataclass
class PaymentRows:
    """Payment rows as Python lists, turned into columns chunk by chunk."""

    day: dt.date
    next_id: int = 1
    rows: list[tuple] = field(default_factory=list)

    def add(self, received: int, cents: int, currency: str, customer: str | None,
            payer: str | None, ref: str | None) -> None:
        pid = f"PAY-{self.day:%Y%m%d}-{self.next_id:07d}"
        self.next_id += 1
        self.rows.append((pid, received, cents, currency, customer, payer, ref))

    def columns(self) -> dict[str, pa.Array]:
        pid, received, cents, currency, customer, payer, ref = (list(c) for c in zip(
            *self.rows, strict=True)) if self.rows else ([],) * 7
        return {"payment_id": pa.array(pid, pa.string()),
                "received_on": dates(pa.array(received, pa.int64())),
                "amount": decimal(pa.array(cents, pa.int64()), 2),
                "currency": pa.array(currency, pa.string()),
                "customer_id": pa.array(customer, pa.string()),
                "payer_name": pa.array(payer, pa.string()),
                "reference": pa.array(ref, pa.string())}


OPENING_KINDS = weighted(
    ("exact", "short", "partial", "several", "amount", "combination", "over", "no_payer",
     "no_match"), [38, 8, 5, 8, 15, 8, 4, 4, 3])
INVOICE_KINDS = weighted(
    ("exact", "discount", "amount", "short", "partial", "no_payer", "over"),
    [40, 25, 15, 8, 4, 4, 4])


def pay_items(rows: PaymentRows, rng: random.Random, kind: str, customer: str, name: str,
              currency: str, items: list[tuple[str, int]], received: int) -> None:
    """One payment of one customer's items [(id, open cents)], of the given kind."""
    first_id, first = items[0]
    ref = None
    if kind == "several" and len(items) > 1:
        cents, ref = sum(a for _, a in items), reference([i for i, _ in items], rng)
    elif kind == "combination" and len(items) in (2, 3):
        cents, ref = sum(a for _, a in items), rng.choice(NO_NUMBER_TEXTS)
    elif kind == "amount":
        cents, ref = first, rng.choice(NO_NUMBER_TEXTS)
    elif kind == "short" and first >= 200:
        cents = first - rng.randint(1, min(100, first // 100))
        ref = reference([first_id], rng)
    elif kind == "partial" and first >= 200:
        cents, ref = first * rng.randint(20, 80) // 100, reference([first_id], rng)
    elif kind == "over":
        cents, ref = first + rng.randint(100, 5000), reference([first_id], rng)
    elif kind == "discount":
        cents, ref = first - (first * 2 + 50) // 100, reference([first_id], rng)
    elif kind == "no_match":
        cents, ref = rng.randint(1000, 90000), "Abschlag Projekt " + str(rng.randint(100, 999))
    else:
        cents, ref = first, reference([first_id], rng)
    if kind == "no_payer":
        customer, name = None, rng.choice(FIRST) + " " + rng.choice(LAST)
    rows.add(received, cents, currency, customer, name, ref)


def opening_payments(rows: PaymentRows, rng: random.Random, opening: Opening,
                     customers: Customers, payers: list[int], today: int) -> None:
    """A payment for each customer in `payers`, over its positive opening items (oldest
    due first)."""
    index = pa.array(payers, pa.int64())
    first = pc.take(opening.first, index).to_pylist()
    count = pc.take(opening.count, index).to_pylist()
    flat = pa.array([f + k for f, c in zip(first, count, strict=True) for k in range(c)],
                    pa.int64())
    ids = pc.take(opening.invoice_id, flat).to_pylist()
    amount = pc.take(opening.amount, flat).to_pylist()
    due = pc.take(opening.due, flat).to_pylist()
    names = customers.names(index).to_pylist()
    cids = customers.ids(index).to_pylist()
    currency = customers.currency(index).to_pylist()
    at = 0
    for i, c in enumerate(count):
        items = sorted((d, j, a) for d, j, a in zip(due[at:at + c], ids[at:at + c],
                                                     amount[at:at + c], strict=True) if a > 0)
        at += c
        if not items:
            continue
        pay_items(rows, rng, rng.choice(OPENING_KINDS), cids[i], names[i], currency[i],
                  [(j, a) for _, j, a in items], today - rng.randint(0, 2))


def invoice_payments(rows: PaymentRows, rng: random.Random, payable: pa.Table,
                     customers: Customers, today: int) -> None:
    """The last night's invoices paid tonight, received on `today` (within the discount
    days). A customer with several of them often pays them at once: naming them all, or
    (up to 3) naming none, for the combination strategy."""
    index = payable["customer"].combine_chunks()
    names = customers.names(index).to_pylist()
    cids = customers.ids(index).to_pylist()
    currency = customers.currency(index).to_pylist()
    customer = index.to_pylist()
    items_all = list(zip(payable["invoice_id"].to_pylist(), payable["gross"].to_pylist(),
                         strict=True))
    at = 0
    while at < len(customer):
        end = at + 1
        while end < len(customer) and customer[end] == customer[at]:
            end += 1
        items = items_all[at:end]
        if len(items) > 1 and rng.random() < 0.6:
            kind = "combination" if len(items) <= 3 and rng.random() < 0.5 else "several"
            pay_items(rows, rng, kind, cids[at], names[at], currency[at], items, today)
        else:
            for item in items:
                pay_items(rows, rng, rng.choice(INVOICE_KINDS), cids[at], names[at],
                          currency[at], [item], today)
        at = end


def stray_payments(rows: PaymentRows, rng: random.Random, count: int, today: int) -> None:
    """Unidentified payers with no usable reference: unapplied cash for a person."""
    for _ in range(count):
        ref = rng.choice(("Bestellung " + str(rng.randint(1000, 9999)), "Danke", None,
                          "Rechnung 2026-" + str(rng.randint(100, 999))))
        rows.add(today - rng.randint(0, 2), rng.randint(500, 50000), "EUR", None,
                 rng.choice(FIRST) + " " + rng.choice(LAST), ref)


def reject_payments(rows: PaymentRows, rng: random.Random, resend: list[tuple]) -> list[tuple]:
    """The deliberate rejects: repeats of tonight's ids (the later row is rejected), last
    night's first payments sent again, one payment naming a customer nobody knows."""
    copies = [rows.rows[rng.randrange(len(rows.rows))]
              for _ in range(max(1, (rows.next_id - 1) // 2500))] if rows.rows else []
    today = ordinal(rows.day)
    unknown = (f"PAY-{rows.day:%Y%m%d}-X{rng.randint(0, 99999):05d}", today, 30000, "EUR",
               "K99999999", "Fa. Beispiel Handels GmbH", "Rechnung 2026-118")
    return copies + resend + [unknown]


def flush(rows: PaymentRows, after: Night, everything: bool = False
          ) -> Iterator[dict[str, pa.Array]]:
    """The rows so far as one chunk of columns, once there are enough (or `everything`);
    the night's first two rows are kept to be sent again tomorrow."""
    if rows.rows and (everything or len(rows.rows) >= CHUNK_PAYERS):
        after.resend_payments = after.resend_payments or rows.rows[:2]
        yield rows.columns()
        rows.rows = []


# --- a night ----------------------------------------------------------------------------


@dataclass
class Night:
    """Everything one night hands to the next: what to pay, dispute, and send again."""

    payable: Payable = field(default_factory=Payable)
    resend_line: dict[str, pa.Array] | None = None
    resend_payments: list[tuple] = field(default_factory=list)


@dataclass
class Generator:
    out: Path
    seed: int
    lines: int
    nights: int
    as_of: dt.date
    fmt: str
    expected: bool
    every: int = 1  # days from one night to the next
    pay_share: float = 0.45  # of each night's invoices, paid the next night
    customers: Customers = field(init=False)
    opening: Opening = field(init=False)
    ledger: Ledger = field(init=False)
    payers: list[int] = field(init=False)  # opening customers in the order they pay
    paid: int = field(init=False, default=0)  # how many of them have paid so far
    plant: bool = field(init=False)  # plant the deliberate rejects (2,000 lines or more)
    disputed: list[int] = field(init=False)  # opening customers whose first item is disputed

    def __post_init__(self):
        self.plant = self.lines >= 2000  # fewer rows could not carry them under 2%
        base = max(20, self.lines // 5)
        new = max(1, base // 200)
        self.customers = Customers(self.seed, [base + n * new for n in range(self.nights)])
        self.opening = build_opening(self.seed, self.customers, self.as_of)
        self.ledger = Ledger(dict(self.opening.last_seq))
        with_items = pc.cast(pc.indices_nonzero(pc.greater(self.opening.count, 0)), pa.int64())
        order = pc.sort_indices(Stream(self.seed, "payers").bits(with_items))
        shuffled = pc.take(with_items, order).to_pylist()
        tail = max(1, len(shuffled) // 100)
        self.payers, self.disputed = shuffled[:-tail], shuffled[-tail:]

    def run(self) -> None:
        self.write_rules()
        state = Night()
        for night in range(self.nights):
            state = self.night(night, state)

    def write_rules(self) -> None:
        folder = self.out / "rules" / CLIENT
        folder.mkdir(parents=True, exist_ok=True)
        oss = "".join(OSS_RULE % {"lower": c.lower(), "cat": cat, "country": c,
                                  "when": OSS_WHEN.format(country=c, category=cat),
                                  "short": "STD" if cat == "standard" else "RED",
                                  "rate": f"{rate / 10:g}"}
                      for c, rates in OSS_RATES.items()
                      for cat, rate in zip(("standard", "reduced"), rates, strict=True))
        texts = {
            "client.yaml": CLIENT_YAML.replace("%(eu)s", ", ".join(f'"{c}"' for c in EU)),
            "tax.yaml": TAX_YAML % {"oss": oss.rstrip("\n"), "rc_when": RC_WHEN},
            "matching.yaml": MATCHING_YAML,
            "credit.yaml": CREDIT_YAML % {"override": "K00000001",
                                          "until": self.as_of + dt.timedelta(days=1)},
            "dunning.yaml": DUNNING_YAML,
        }
        for name, text in texts.items():
            (folder / name).write_text(text, encoding="utf-8")

    def night(self, night: int, before: Night) -> Night:
        day = self.as_of + dt.timedelta(days=night * self.every)
        folder = self.out / "drops" / CLIENT / day.isoformat()
        after = Night()

        def write(table: str, chunks: Iterator[dict[str, pa.Array]]) -> None:
            write_table(folder, table, self.fmt, self.out, chunks)

        write("customers", customer_chunks(self.customers, night))
        write("fx_rates", iter([fx_rates(self.seed, day, night == 0)]))
        if night == 0:
            write("opening_items", self.opening.chunks(self.customers))
        groups = plan_groups(self.seed, night, self.lines, self.customers)
        write("transactions", self.transactions(night, day, groups, before, after))
        write("payments", self.payments(night, day, len(groups.customer), before, after))
        write("disputes", iter([self.disputes(night, day, before)]))
        write("open_orders", iter([open_orders(self.seed, night, self.customers)]))
        return after

    def transactions(self, night: int, day: dt.date, groups: Groups, before: Night,
                     after: Night) -> Iterator[dict[str, pa.Array]]:
        """The lines chunk by chunk; predicts their invoices as it goes, picks some to pay
        or dispute tomorrow, and adds the deliberate rejects to the last chunk."""
        sink = Sink(self.out / "expected" / CLIENT / day.isoformat() / "invoices.parquet",
                    "invoices", "parquet", self.out) if self.expected else None
        rng = random.Random(f"{self.seed}/txn-rejects/{night}")
        chunks = list(line_chunks(groups))
        for n, (start, end) in enumerate(chunks):
            lines = make_lines(self.seed, night, day, groups, start, end, self.customers)
            self.invoices(night, day, groups, lines, after, sink)
            columns = lines.columns
            kept = pc.indices_nonzero(pc.greater_equal(lines.code, 0))
            if self.plant and after.resend_line is None and len(kept):
                after.resend_line = {k: v.slice(kept[0].as_py(), 1) for k, v in columns.items()}
            last = n == len(chunks) - 1
            columns = with_rejected_lines(columns, rng, before.resend_line if last else None,
                                          minimum=1 if last and self.plant else 0)
            yield columns
        if sink:
            sink.close()

    def invoices(self, night: int, day: dt.date, groups: Groups, lines: Lines, after: Night,
                 sink: Sink | None) -> None:
        totals = invoice_totals(lines)
        numbers, credit = self.ledger.number(totals, day.year)
        customer = pc.take(groups.customer, totals["g"])
        s = streams(self.seed, "payable", night)
        everything = s("all").chance(0.1, customer)
        positive = pc.greater(totals["gross_sum"], 0)  # a zero invoice is not paid
        pay = pc.and_(positive, pc.or_(s("pay").chance(self.pay_share, totals["g"]), everything))
        dispute = pc.and_(pc.and_(pc.invert(credit), pc.invert(pay)),
                          s("dispute").chance(0.002, totals["g"]))
        after.payable.add(customer, numbers, totals["gross_sum"], pay, dispute)
        if sink:
            sink.write({"invoice_id": numbers,
                        "document_type": pc.if_else(credit, "credit_note", "invoice"),
                        "customer_id": self.customers.ids(customer),
                        "currency": self.customers.currency(customer),
                        "gross_amount": decimal(totals["gross_sum"], 2)})

    def payments(self, night: int, day: dt.date, invoices: int, before: Night, after: Night
                 ) -> Iterator[dict[str, pa.Array]]:
        """About one payment per two invoices: the last night's invoices, then opening
        customers in their shuffled order, unidentified strays, and the rejects."""
        rng = random.Random(f"{self.seed}/payments/{night}")
        rows = PaymentRows(day)
        today = ordinal(day)
        target = max(1, invoices // 2)
        paid_on = today - max(0, self.every - PAID_WITHIN)  # the last night's invoices
        for part in before.payable.slices(CHUNK_PAYERS):
            invoice_payments(rows, rng, part, self.customers, paid_on)
            yield from flush(rows, after)
        want = max(target - (rows.next_id - 1), target // 10)
        batch = self.payers[self.paid:self.paid + want]
        self.paid += len(batch)
        for at in range(0, len(batch), CHUNK_PAYERS):
            opening_payments(rows, rng, self.opening, self.customers,
                             batch[at:at + CHUNK_PAYERS], today)
            yield from flush(rows, after)
        stray_payments(rows, rng, max(1, target // 40), today)
        after.resend_payments = after.resend_payments or rows.rows[:2]
        if self.plant:
            rows.rows += reject_payments(rows, rng, before.resend_payments)
        yield from flush(rows, after, everything=True)

    def disputes(self, night: int, day: dt.date, before: Night) -> dict[str, pa.Array]:
        """First night: one item of each reserved customer. Later: the last night's picks, and
        the first night's disputes resolved, a few each night."""
        rng = random.Random(f"{self.seed}/disputes/{night}")
        rows: list[tuple] = []
        if night == 0:
            index = pa.array(self.disputed, pa.int64())
            ids = pc.take(self.opening.invoice_id, pc.take(self.opening.first, index))
            rows = [(i, ordinal(day), "open", rng.choice(DISPUTE_REASONS))
                    for i in ids.to_pylist()]
        else:
            rows = [(i, ordinal(day), "open", rng.choice(DISPUTE_REASONS))
                    for i in before.payable.disputed]
            first = pc.take(self.opening.invoice_id, pc.take(
                self.opening.first, pa.array(self.disputed, pa.int64()))).to_pylist()
            share = len(first) // (2 * max(1, self.nights))
            rows += [(i, ordinal(self.as_of), "resolved", "Gutschrift vereinbart")
                     for i in first[(night - 1) * share:night * share]]
        ids, opened, status, reason = (list(c) for c in zip(*rows, strict=True)) if rows \
            else ([],) * 4
        return {"invoice_id": pa.array(ids, pa.string()),
                "opened_on": dates(pa.array(opened, pa.int64())),
                "status": pa.array(status, pa.string()), "reason": pa.array(reason, pa.string())}


def with_rejected_lines(columns: dict[str, pa.Array], rng: random.Random,
                        resend: dict[str, pa.Array] | None, minimum: int
                        ) -> dict[str, pa.Array]:
    """One line in 20,000 repeated (the later copy is rejected), and last night's first
    line sent again (already processed)."""
    rows = len(columns["txn_id"])
    picks = pa.array(sorted(rng.randrange(rows) for _ in range(max(minimum, rows // 20000))),
                     pa.int64())
    extra = [{k: pc.take(v, picks) for k, v in columns.items()}]
    if resend is not None:
        extra.append(resend)
    return {k: pa.concat_arrays([v, *(e[k] for e in extra)]) for k, v in columns.items()}


def fx_rates(seed: int, day: dt.date, first: bool) -> dict[str, pa.Array]:
    """EUR to USD and GBP and back, for the night (and the day before on the first night),
    moving a little from night to night."""
    rows = []
    days = [day - dt.timedelta(days=1), day] if first else [day]
    for d in days:
        rng = random.Random(f"{seed}/fx/{d}")
        for cur, base in FX_BASE.items():
            rate = round(base * (1 + rng.uniform(-0.01, 0.01)), 4)
            rows.append((ordinal(d), "EUR", cur, round(rate * 10**8)))
            rows.append((ordinal(d), cur, "EUR", round(10**8 / rate)))
    day_, src, dst, rate = (list(c) for c in zip(*rows, strict=True))
    return {"rate_date": dates(pa.array(day_, pa.int64())),
            "from_currency": pa.array(src, pa.string()),
            "to_currency": pa.array(dst, pa.string()),
            "rate": decimal(pa.array(rate, pa.int64()), 8)}


def open_orders(seed: int, night: int, customers: Customers) -> dict[str, pa.Array]:
    """The full list of accepted orders not yet billed: 4% of the customers, amounts
    changing from night to night."""
    known = arange(0, customers.count[night])
    index = pc.indices_nonzero(Stream(seed, "orders").chance(0.04, known))
    index = pc.cast(index, pa.int64())
    amount = amounts_cents(Stream(seed, "orders", night), index, 50_000, 2_500_000)
    return {"order_id": numbered("SO-", index, 8), "customer_id": customers.ids(index),
            "currency": customers.currency(index), "amount": decimal(amount, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for rules/, drops/ (and expected/)")
    parser.add_argument("--transactions", type=int, required=True,
                        help="billable lines per night")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--nights", type=int, default=1)
    parser.add_argument("--every", type=int, default=1, metavar="DAYS",
                        help="days from one night to the next (default 1)")
    parser.add_argument("--paid", type=int, default=45, metavar="PERCENT",
                        help="share of each night's invoices the next night pays (default 45)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2),
                        help="the first night's date")
    parser.add_argument("--expected", action="store_true",
                        help="also write the invoices the engine should make")
    args = parser.parse_args(argv)
    if args.transactions < 1 or args.nights < 1 or args.every < 1:
        parser.error("--transactions, --nights and --every must be at least 1")
    if not 0 <= args.paid <= 100:
        parser.error("--paid is a percent, 0 to 100")
    Generator(args.out, args.seed, args.transactions, args.nights, args.as_of, args.format,
              args.expected, args.every, args.paid / 100).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
