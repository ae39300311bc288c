"""Property: over two real nights of random open items, payments and matching rules,
cash application keeps the SPEC invariants (sections 5 and 7).

Night 1 brings the customers, the opening items (EUR and USD), disputes and a few
payments; night 2 more payments (one may send a night-1 payment again), and the cash
left unapplied on night 1 is tried again. After each night the outputs and the state
store must agree: every payment's rows add up to its amount (or, for carried cash, to
what was left of it), every item falls by exactly what its rows say, nothing goes
below zero, journals balance and credit AR by what the rows reduce, currencies never
mix, and an item under an open dispute is only ever touched by a `reference` strategy.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from conftest import ACCOUNTS_WITH_DISCOUNT, replace_accounts
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scenario import Scenario

from engine.config.matching import Tolerance

TAX = """\
kind: tax
version: 1
hit_policy: first
rounding_level: line
prices_include_tax: false
rules:
  - {id: standard, when: 'true', code: STD, rate: 19%}
"""

ACCOUNTS = ACCOUNTS_WITH_DISCOUNT

NIGHTS = (dt.date(2026, 3, 2), dt.date(2026, 3, 3))
CUSTOMERS = {"C1": "EUR", "C2": "EUR", "C3": "USD"}
CURRENCIES = ("EUR", "USD")
DISCOUNT_PERCENT, DISCOUNT_DAYS = Decimal("0.02"), 10
CENT = Decimal("0.01")
TAX_RATE = Decimal("0.19")
ZERO = Decimal(0)

# Remittance spellings of T-2026-0003, as payers write them.
SPELLINGS = ("T-{y}-{s:04}", "t {y} {s:04}", "inv t {y} {s:04}", "#t{y}{s:04}",
             "INV T{y}-{s:04}", "invT-{y}-{s:04}", "Rechnung t_{y}_{s:04}", "t.{y}.{s:04}")
TEXTS = ("{ref}", "payment {ref}", "{ref}, thank you", "re: {ref} / {ref2}", "{ref} and {ref2}")

COMMON = [Decimal(v) for v in ("49.50", "100.00", "100.00", "250.50", "1200.00", "75.25")]
amounts = st.one_of(st.sampled_from(COMMON), st.decimals(
    min_value=Decimal("1"), max_value=Decimal("600"), places=2, allow_nan=False,
    allow_infinity=False))


@dataclass(frozen=True)
class Open:
    invoice_id: str
    customer_id: str
    currency: str
    amount: Decimal
    invoice_date: dt.date


@dataclass(frozen=True)
class Rules:
    strategies: tuple[dict, ...]  # id, type, tolerance (absolute, percent), knobs
    oldest_first: bool
    discount: bool

    def knobs(self, strategy_id: str) -> dict:
        return next(s for s in self.strategies if s["id"] == strategy_id)

    def tolerance(self, strategy_id: str) -> Tolerance:
        return Tolerance(None, *self.knobs(strategy_id)["tolerance"])

    def yaml(self) -> str:
        out = ["kind: matching", "version: 1", "allocation_order:",
               "  components: [fees, interest, principal]",
               f"  oldest_first: {str(self.oldest_first).lower()}", "strategies:"]
        for s in self.strategies:
            out += [f"  - id: {s['id']}", f"    type: {s['type']}"]
            if s["when"]:
                out.append(f"    when: '{s['when']}'")
            absolute, pct = s["tolerance"]
            if absolute is not None or pct is not None:
                out.append("    tolerance:")
                if absolute is not None:
                    out.append(f"      absolute: {absolute}")
                if pct is not None:
                    out.append(f'      percent: "{(pct * 100).normalize():f}%"')
            for knob in ("on_short", "tie_break", "max_items"):
                if knob in s:
                    out.append(f"    {knob}: {s[knob]}")
        return "\n".join(out) + "\n"


@st.composite
def strategy_rules(draw) -> Rules:
    types = draw(st.lists(st.sampled_from(["reference", "amount", "combination"]),
                          min_size=1, max_size=3))
    strategies = []
    for n, kind in enumerate(types):
        s = {"id": f"s{n}_{kind}", "type": kind,
             "when": draw(st.sampled_from([None, None, "customer_id is not null",
                                           "amount <= 300", "reference is not null"])),
             "tolerance": (draw(st.sampled_from([None, ZERO, Decimal("0.05"), Decimal("0.50"),
                                                 Decimal("1.00"), Decimal("5.00")])),
                           draw(st.sampled_from([None, None, Decimal("0.005"), Decimal("0.01"),
                                                 Decimal("0.02")])))}
        if kind == "reference":
            s["on_short"] = draw(st.sampled_from(["partial", "exception"]))
        elif kind == "amount":
            s["tie_break"] = draw(st.sampled_from(["oldest", "exception"]))
        else:
            s["max_items"] = draw(st.integers(2, 4))
        strategies.append(s)
    return Rules(tuple(strategies), draw(st.booleans()), draw(st.booleans()))


def _ref(item: Open, spelling: str) -> str:
    year, seq = item.invoice_id.split("-")[1:]
    return spelling.format(y=int(year), s=int(seq))


@st.composite
def payment(draw, items: list[Open], night: dt.date, pid: str) -> dict:
    """A payment aimed at one or two items: exact, a little or a lot short, over, their
    sum, less the discount, or any amount; named in the reference or not."""
    target = draw(st.sampled_from(items))
    mates = [i for i in items if i.customer_id == target.customer_id
             and i.currency == target.currency and i != target]
    second = draw(st.sampled_from(mates)) if mates and draw(st.booleans()) else None
    base = target.amount + (second.amount if second else ZERO)
    kind = draw(st.sampled_from(["exact", "exact", "short", "short_big", "over", "discount",
                                 "any"]))
    amount = {
        "exact": base,
        "short": base - draw(st.sampled_from([CENT, Decimal("0.05"), Decimal("0.40"),
                                              Decimal("1.00"), Decimal("4.99")])),
        "short_big": (base / 2).quantize(CENT),
        "over": base + draw(st.sampled_from([CENT, Decimal("0.50"), Decimal("20.00")])),
        "discount": base - (target.amount * DISCOUNT_PERCENT).quantize(CENT, ROUND_HALF_UP),
        "any": draw(amounts),
    }[kind]
    currency = target.currency if draw(st.integers(0, 7)) else draw(st.sampled_from(CURRENCIES))
    customer = draw(st.sampled_from([target.customer_id, target.customer_id, "",
                                     draw(st.sampled_from(sorted(CUSTOMERS)))]))
    named = draw(st.sampled_from(["target", "target", "other", "none", "text"]))
    text = draw(st.sampled_from(TEXTS))
    spelling = draw(st.sampled_from(SPELLINGS))
    ref2 = _ref(second or draw(st.sampled_from(items)), draw(st.sampled_from(SPELLINGS)))
    reference = {
        "target": text.format(ref=_ref(target, spelling), ref2=ref2),
        "other": _ref(draw(st.sampled_from(items)), spelling),
        "none": "",
        "text": "thank you for your business",
    }[named]
    received = night - dt.timedelta(days=draw(st.integers(0, 2)))
    return {"payment_id": pid, "received_on": received.isoformat(),
            "amount": str(max(amount, CENT)), "currency": currency, "customer_id": customer,
            "reference": reference}


@dataclass(frozen=True)
class World:
    items: list[Open]  # opening items of night 1
    billed: list[Open]  # night 2's invoices, one a customer, as their numbers will be
    nets: list[Decimal]  # their net amounts (one line each, 19% tax on top)
    disputes: tuple[list[dict], list[dict]]
    payments: tuple[list[dict], list[dict]]
    rules: Rules

    def transactions(self) -> list[dict]:
        return [{"txn_id": f"X-{i.invoice_id}", "customer_id": i.customer_id,
                 "txn_date": NIGHTS[1].isoformat(), "product_code": "P", "quantity": "1",
                 "unit_price": str(net), "currency": i.currency}
                for i, net in zip(self.billed, self.nets, strict=True)]


@st.composite
def worlds(draw) -> World:
    items = []
    for seq in range(1, draw(st.integers(3, 8)) + 1):
        customer = draw(st.sampled_from(sorted(CUSTOMERS)))
        currency = CUSTOMERS[customer] if draw(st.integers(0, 3)) else draw(
            st.sampled_from(CURRENCIES))
        items.append(Open(f"T-2026-{seq:04}", customer, currency, draw(amounts),
                          dt.date(2026, 2, 10) + dt.timedelta(days=draw(st.integers(0, 20)))))
    # Invoices of night 2 are numbered on after the opening items, in customer order;
    # night-1 payments may already name them (and wait a night as unapplied cash).
    billing = sorted(draw(st.sets(st.sampled_from(sorted(CUSTOMERS)), max_size=3)))
    nets = [draw(amounts) for _ in billing]
    billed = [Open(f"T-2026-{len(items) + n:04}", c, CUSTOMERS[c],
                   net + (net * TAX_RATE).quantize(CENT, ROUND_HALF_UP), NIGHTS[1])
              for n, (c, net) in enumerate(zip(billing, nets, strict=True), 1)]
    ids = [i.invoice_id for i in items]
    opened = draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))
    night2 = draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))
    disputes = (
        [{"invoice_id": i, "opened_on": "2026-03-01", "status": "open", "reason": "damaged"}
         for i in opened],
        [{"invoice_id": i, "opened_on": "2026-03-03",
          "status": "resolved" if i in opened else "open", "reason": "price"} for i in night2])
    targets = items + billed
    first = [draw(payment(targets, NIGHTS[0], f"P1-{n}")) for n in range(draw(st.integers(1, 5)))]
    second = [draw(payment(targets, NIGHTS[1], f"P2-{n}"))
              for n in range(draw(st.integers(2, 6)))]
    if draw(st.booleans()):  # a night-1 payment sent again on night 2
        second.insert(draw(st.integers(0, len(second))), draw(st.sampled_from(first)))
    if draw(st.booleans()):  # a payment twice in one drop, the second time changed
        second.append(dict(draw(st.sampled_from(second)), amount=str(draw(amounts))))
    return World(items, billed, nets, disputes, (first, second), draw(strategy_rules()))


# --- reading a night back ---------------------------------------------------------------

OPEN_ITEMS = "SELECT invoice_id, amount_open, closed_on, due_date FROM state.open_items"
UNAPPLIED = ("SELECT payment_id, customer_id, currency, received_on, cash_open, closed_on "
             "FROM state.unapplied_cash")
DISPUTED = "SELECT invoice_id FROM state.disputes WHERE status = 'open'"


@dataclass
class Night:
    date: dt.date
    sent: list[dict]
    accepted: dict[str, dict]  # payment_id -> tonight's accepted payment row
    carried: dict[str, tuple]  # payment_id -> (customer, currency, received_on, cash left)
    open_before: dict[str, Decimal]
    open_after: dict[str, tuple[Decimal, dt.date | None]]
    due: dict[str, dt.date]
    unapplied_after: dict[str, tuple]
    disputed: set[str]
    apps: list[dict]
    entries: list[dict]
    rejects: list[dict]
    exceptions: list[dict]


def _run_night(s: Scenario, date: dt.date, tables: dict, open_before: dict[str, Decimal],
               carried: dict[str, tuple]) -> Night:
    assert s.night(date.isoformat(), **{k: v for k, v in tables.items() if v}) == 0
    check_aging(s)
    sent = tables["payments"]
    rejects = s.rows("rejects")
    dropped = {r["row_number"] for r in rejects if r["source_file"].startswith("payments")}
    accepted = {p["payment_id"]: p for n, p in enumerate(sent, 1) if n not in dropped}
    billed = {r["invoice_id"]: r["gross_amount"] for r in s.rows("invoices")}
    items = s.state(OPEN_ITEMS)
    return Night(
        date, sent, accepted, carried, {**open_before, **billed},
        {i: (a, c) for i, a, c, _d in items}, {i: d for i, _a, _c, d in items},
        {p: rest for p, *rest in s.state(UNAPPLIED)},
        {i for (i,) in s.state(DISPUTED)},
        s.rows("cash_applications"), s.rows("journal_entries"), rejects, s.rows("exceptions"))


# --- the invariants ----------------------------------------------------------------------

def check_aging(s: Scenario) -> None:
    """Aging agrees with the state store: per customer and currency, the buckets add up to
    the open items, `unapplied` is minus the unapplied cash, and total_open is both."""
    want: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for customer, currency, amount in s.state(
            "SELECT customer_id, currency, amount_open FROM open_items "
            "WHERE closed_on IS NULL AND amount_open <> 0"):
        want[customer, currency][0] += amount
    for customer, currency, cash in s.state(
            "SELECT customer_id, currency, cash_open FROM unapplied_cash "
            "WHERE closed_on IS NULL AND cash_open <> 0"):
        want[customer, currency][1] -= cash
    got = {}
    for row in s.rows("aging"):
        buckets = sum((row[b] for b in ("current", "d1_30", "d31_60", "d61_90", "over_90")),
                      ZERO)
        assert buckets + row["unapplied"] == row["total_open"], row
        got[row["customer_id"], row["currency"]] = [buckets, row["unapplied"]]
    assert got == {k: v for k, v in want.items()}


def _reduced(row: dict) -> Decimal:
    return row["applied_amount"] + row["written_off_amount"] + row["discount_amount"]


def check_payments(night: Night) -> None:
    """Applied cash plus the unapplied rest is the payment's amount tonight, or what was
    left of carried cash; nothing else has rows; one row per (payment, item)."""
    by_payment: dict[str, list[dict]] = defaultdict(list)
    for row in night.apps:
        by_payment[row["payment_id"]].append(row)
    assert not set(night.accepted) & set(night.carried), "a payment sent twice was applied twice"
    assert set(by_payment) <= set(night.accepted) | set(night.carried)
    for pid, p in night.accepted.items():
        rows = by_payment[pid]
        assert sum(r["applied_amount"] for r in rows) == Decimal(p["amount"]), (pid, rows)
    for pid, (_cust, _cur, _received, left) in night.carried.items():
        rows = by_payment.get(pid, [])
        if rows:
            assert sum(r["applied_amount"] for r in rows) == left, (pid, rows)
            assert sum(r["applied_amount"] for r in rows if r["invoice_id"]) <= left
    for pid, rows in by_payment.items():
        keys = [r["invoice_id"] for r in rows]
        assert len(keys) == len(set(keys)), (pid, keys)
        for r in rows:
            for column in ("applied_amount", "written_off_amount", "discount_amount"):
                assert r[column] >= 0 and r[column] == r[column].quantize(CENT), r
            if r["invoice_id"] is None:
                assert r["applied_amount"] > 0 and r["written_off_amount"] == 0
                assert r["discount_amount"] == 0


def check_unapplied(night: Night) -> None:
    """What a payment leaves unapplied is carried in the state store, to the cent."""
    rests = {r["payment_id"]: r["applied_amount"] for r in night.apps if r["invoice_id"] is None}
    applied = defaultdict(Decimal)
    for r in night.apps:
        if r["invoice_id"]:
            applied[r["payment_id"]] += r["applied_amount"]
    for pid in night.accepted:
        if pid in rests:
            assert night.unapplied_after[pid][3] == rests[pid]
            assert night.unapplied_after[pid][4] is None
        else:
            assert pid not in night.unapplied_after
    for pid, (_c, _cur, _r, left) in night.carried.items():
        cash_open, closed_on = night.unapplied_after[pid][3:]
        assert cash_open == left - applied[pid] >= 0
        assert (closed_on is not None) == (cash_open == 0)


def check_items(night: Night, items: dict[str, Open], rules: Rules) -> None:
    """Each item falls by exactly applied + written off + discount; never below zero;
    closed exactly when nothing is open; same currency and customer as the payment."""
    reduced = defaultdict(Decimal)
    customers = defaultdict(set)
    for r in night.apps:
        if r["invoice_id"] is None:
            continue
        item = items[r["invoice_id"]]
        reduced[item.invoice_id] += _reduced(r)
        customers[r["payment_id"]].add(item.customer_id)
        payer, currency, received = _payer(night, r["payment_id"])
        assert r["currency"] == item.currency == currency, r
        assert payer in (None, item.customer_id), (r, payer)
        assert _reduced(r) > 0, r  # a row applies something to its item
        if r["discount_amount"]:  # only on an item nothing of which was paid before
            assert rules.discount and night.open_before[item.invoice_id] == item.amount, r
            assert received <= item.invoice_date + dt.timedelta(days=DISCOUNT_DAYS), r
            assert r["discount_amount"] <= (item.amount * DISCOUNT_PERCENT).quantize(
                CENT, ROUND_HALF_UP), r
    assert all(len(c) == 1 for c in customers.values()), customers
    for invoice_id, (after, closed_on) in night.open_after.items():
        assert after >= 0, invoice_id
        assert (closed_on is not None) == (after == 0), (invoice_id, after, closed_on)
        before = night.open_before[invoice_id]
        assert before - after == reduced[invoice_id], (invoice_id, before, after)
        if before > 0 and after == 0:
            assert closed_on == night.date


def _payer(night: Night, pid: str) -> tuple[str | None, str, dt.date]:
    if pid in night.accepted:
        p = night.accepted[pid]
        return p["customer_id"] or None, p["currency"], dt.date.fromisoformat(p["received_on"])
    customer, currency, received, _left = night.carried[pid]
    return customer, currency, received


def check_strategies(night: Night, rules: Rules) -> None:
    """Disputed items only by `reference`; `amount` takes one item, `combination` at most
    max_items; a write-off within the strategy's tolerance."""
    for pid, rows in _item_rows(night).items():
        (strategy,) = {r["strategy"] for r in rows}
        knobs = rules.knobs(strategy)
        for r in rows:
            assert r["invoice_id"] not in night.disputed or knobs["type"] == "reference", r
        if knobs["type"] == "amount":
            assert len(rows) == 1, rows
        if knobs["type"] == "combination":
            assert len(rows) <= knobs["max_items"], rows
        written_off = sum(r["written_off_amount"] for r in rows)
        if written_off:
            total = sum(_reduced(r) for r in rows)
            assert rules.tolerance(strategy).allows(written_off, total), (pid, rows)


def check_settling(night: Night, rules: Rules) -> None:
    """A payment either settles its items in full (what is short within tolerance written
    off or taken as discount, what is over left unapplied), or, only under a `reference`
    strategy with on_short partial, pays them in allocation order until its cash is gone."""
    rests = {r["payment_id"] for r in night.apps if r["invoice_id"] is None}
    for pid, rows in _item_rows(night).items():
        still_open = [r for r in rows if night.open_after[r["invoice_id"]][0] > 0]
        if not still_open:
            continue
        (strategy,) = {r["strategy"] for r in rows}
        assert rules.knobs(strategy).get("on_short") == "partial", rows  # reference only
        assert pid not in rests, (pid, rows)
        assert all(r["written_off_amount"] == r["discount_amount"] == 0 for r in rows), rows
        order = sorted(rows, key=lambda r: (night.due[r["invoice_id"]], r["invoice_id"]),
                       reverse=not rules.oldest_first)
        first_open = next(n for n, r in enumerate(order)
                          if night.open_after[r["invoice_id"]][0] > 0)
        assert all(r["applied_amount"] == 0 for r in order[first_open + 1:]), order


def check_tie_break(night: Night, items: dict[str, Open], rules: Rules) -> None:
    """An exact `amount` match: an equal item of the payer that stayed untouched all night
    (and is not disputed) would have been a candidate too, so the strategy must break ties
    by `oldest` and that item must be the younger (due date, then invoice_id)."""
    rows = _item_rows(night)
    rests = {r["payment_id"] for r in night.apps if r["invoice_id"] is None}
    touched = {r["invoice_id"] for r in night.apps if r["invoice_id"]}
    for pid, (row, *more) in rows.items():
        x = items[row["invoice_id"]]
        knobs = rules.knobs(row["strategy"])
        exact = row["applied_amount"] == night.open_before[x.invoice_id] and _reduced(row) == \
            row["applied_amount"] and pid not in rests
        if more or knobs["type"] != "amount" or not exact or sum(
                r["invoice_id"] == x.invoice_id for r in night.apps) > 1:
            continue
        for w in items.values():
            if (w.invoice_id not in touched and w.invoice_id not in night.disputed
                    and (w.customer_id, w.currency) == (x.customer_id, x.currency)
                    and night.open_before.get(w.invoice_id) == row["applied_amount"]):
                assert knobs["tie_break"] == "oldest", (pid, x, w)
                assert (night.due[w.invoice_id], w.invoice_id) > (
                    night.due[x.invoice_id], x.invoice_id), (pid, x, w)


def check_exceptions(night: Night, items: dict[str, Open]) -> None:
    """A payment of tonight that applies nothing is never silent: it has a warning. A
    payment whose cash is left over after its items keeps it on their customer."""
    warned = {e["entity_id"] for e in night.exceptions
              if e["entity_type"] == "payment" and e["severity"] in ("warning", "error")}
    applied = _item_rows(night)
    for pid in night.accepted:
        if pid not in applied:
            assert pid in warned, (pid, night.exceptions)
    for pid, rows in applied.items():
        if pid in night.unapplied_after:
            (customer,) = {items[r["invoice_id"]].customer_id for r in rows}
            assert night.unapplied_after[pid][0] == customer, (pid, night.unapplied_after[pid])


def _item_rows(night: Night) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in night.apps:
        if r["invoice_id"] is not None:
            out[r["payment_id"]].append(r)
    return out


def check_journal(night: Night) -> None:
    """Every entry balances per currency; per payment: Dr cash the amount (tonight's) or Dr
    unapplied cash what it applies (carried), Cr AR what its rows reduce, Dr write-off and
    discount, Cr unapplied cash the rest."""
    balance = defaultdict(Decimal)
    by_payment: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for e in night.entries:
        assert e["debit"] >= 0 and e["credit"] >= 0, e
        balance[(e["entry_id"], e["currency"])] += e["debit"] - e["credit"]
        if e["document_type"] == "payment":
            by_payment[e["document_id"]][e["account"]] += e["debit"] - e["credit"]
    assert all(v == 0 for v in balance.values()), balance
    expected: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in night.apps:
        want = expected[r["payment_id"]]
        if r["invoice_id"] is None:
            want["1590"] -= r["applied_amount"] if r["payment_id"] in night.accepted else ZERO
            continue
        want["1400"] -= _reduced(r)
        want["2400"] += r["written_off_amount"]
        want["8736"] += r["discount_amount"]
        if r["payment_id"] in night.carried:
            want["1590"] += r["applied_amount"]
    for pid, p in night.accepted.items():
        expected[pid]["1200"] += Decimal(p["amount"])
    clean = {pid: {a: v for a, v in acc.items() if v} for pid, acc in expected.items()}
    got = {pid: {a: v for a, v in acc.items() if v} for pid, acc in by_payment.items()}
    assert got == {pid: acc for pid, acc in clean.items() if acc}
    credited = sum((-v["1400"] for v in by_payment.values()), ZERO)
    assert credited == sum((_reduced(r) for r in night.apps if r["invoice_id"]), ZERO)


def check_night(night: Night, items: dict[str, Open], rules: Rules) -> None:
    check_payments(night)
    check_unapplied(night)
    check_items(night, items, rules)
    check_strategies(night, rules)
    check_settling(night, rules)
    check_tie_break(night, items, rules)
    check_exceptions(night, items)
    check_journal(night)


# --- the property ------------------------------------------------------------------------

def _scenario(tmp: Path, rules: Rules) -> Scenario:
    terms = (f"payment_terms:\n  net_days: 30\n  discount: {{percent: 2%, days: "
             f"{DISCOUNT_DAYS}}}\n" if rules.discount else "")
    s = Scenario(tmp, TAX, client_extra=terms, **{"matching.yaml": rules.yaml()})
    replace_accounts(s.rules, ACCOUNTS)
    return s


def run_world(world: World) -> None:
    items = {i.invoice_id: i for i in world.items + world.billed}
    customers = [{"customer_id": c, "name": c, "country": "DE", "currency": cur}
                 for c, cur in CUSTOMERS.items()]
    opening = [{"invoice_id": i.invoice_id, "customer_id": i.customer_id,
                "invoice_date": i.invoice_date.isoformat(),
                "due_date": (i.invoice_date + dt.timedelta(days=30)).isoformat(),
                "currency": i.currency, "amount_open": str(i.amount)} for i in world.items]
    with tempfile.TemporaryDirectory() as tmp:
        s = _scenario(Path(tmp), world.rules)
        first = _run_night(s, NIGHTS[0], {
            "customers": customers, "opening_items": opening, "disputes": world.disputes[0],
            "payments": world.payments[0]}, {i.invoice_id: i.amount for i in world.items}, {})
        check_night(first, items, world.rules)
        carried = {pid: tuple(row[:4]) for pid, row in first.unapplied_after.items()
                   if row[4] is None}
        second = _run_night(s, NIGHTS[1], {
            "disputes": world.disputes[1], "payments": world.payments[1],
            "transactions": world.transactions()},
            {i: a for i, (a, _c) in first.open_after.items()}, carried)
        check_night(second, items, world.rules)
        billed = s.rows("invoices")

    assert [(r["invoice_id"], r["customer_id"], r["gross_amount"]) for r in billed] == [
        (i.invoice_id, i.customer_id, i.amount) for i in world.billed]

    seen, resent = set(first.accepted), []
    for n, p in enumerate(second.sent, 1):  # a payment already processed, or twice tonight
        if p["payment_id"] in seen:
            resent.append(n)
        seen.add(p["payment_id"])
    assert sorted(r["row_number"] for r in second.rejects
                  if r["source_file"].startswith("payments") and r["column"] == "payment_id"
                  ) == resent
    for invoice_id, item in items.items():  # both nights together: never paid beyond it
        paid = sum((_reduced(r) for night in (first, second) for r in night.apps
                    if r["invoice_id"] == invoice_id), ZERO)
        assert paid == item.amount - second.open_after[invoice_id][0] <= item.amount


def _pay(pid: str, received: str, amount: str, currency: str, customer: str,
         reference: str) -> dict:
    return {"payment_id": pid, "received_on": received, "amount": amount,
            "currency": currency, "customer_id": customer, "reference": reference}


# Every path once, whatever the draws: a discount taken, a disputed item named, cash
# waiting a night for an invoice not yet billed, a partial payment finished by amount,
# a payment sent again, a shortfall written off.
EVERY_PATH = World(
    items=[Open("T-2026-0001", "C1", "EUR", Decimal("100.00"), dt.date(2026, 2, 25)),
           Open("T-2026-0002", "C1", "EUR", Decimal("250.50"), dt.date(2026, 2, 10)),
           Open("T-2026-0003", "C2", "EUR", Decimal("49.50"), dt.date(2026, 2, 15)),
           Open("T-2026-0004", "C3", "USD", Decimal("1200.00"), dt.date(2026, 2, 20))],
    billed=[Open("T-2026-0005", "C2", "EUR", Decimal("119.00"), NIGHTS[1])],
    nets=[Decimal("100.00")],
    disputes=([{"invoice_id": "T-2026-0003", "opened_on": "2026-03-01", "status": "open",
                "reason": "damaged"}], []),
    payments=([_pay("P1-0", "2026-03-02", "98.00", "EUR", "C1", "inv t 2026 0001"),
               _pay("P1-1", "2026-03-02", "49.50", "EUR", "", "#t20260003"),
               _pay("P1-2", "2026-03-01", "119.00", "EUR", "C2", "T-2026-0005"),
               _pay("P1-3", "2026-03-02", "100.00", "EUR", "C1", "T-2026-0002")],
              [_pay("P1-3", "2026-03-03", "100.00", "EUR", "C1", "T-2026-0002"),
               _pay("P2-1", "2026-03-03", "1199.60", "USD", "C3", ""),
               _pay("P2-2", "2026-03-03", "150.50", "EUR", "C1", "")]),
    rules=Rules(({"id": "s0_reference", "type": "reference", "when": None,
                  "tolerance": (Decimal("1.00"), None), "on_short": "partial"},
                 {"id": "s1_amount", "type": "amount", "when": "customer_id is not null",
                  "tolerance": (Decimal("0.50"), None), "tie_break": "oldest"},
                 {"id": "s2_combination", "type": "combination", "when": None,
                  "tolerance": (None, None), "max_items": 3}), True, True))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
@example(EVERY_PATH)
def test_cash_application_keeps_the_invariants_over_two_nights(world):
    run_world(world)
