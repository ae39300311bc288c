"""Cash application: tonight's payments, and unapplied cash from earlier nights, matched
to open items by the client's ordered strategies.

Each strategy takes the payments still unmatched. `reference` and `amount` are SQL
over the whole night at once, run in rounds: a round picks items for every
payment, lets go each payment none of whose items an earlier payment (received
first, then by id) also picked, and settles those; the others are tried again in
the next round against what is left. `combination` is a bounded search in Python
(`stages.combination`) over the payer's items still open after the first two.

Settling a payment (`cash_sql.SETTLE`): cash that covers the items pays them; a
shortfall within the discounts the payment may take and the strategy's tolerance
settles them in full, the discount booked as discount and the rest written off; a
shortfall beyond is applied in allocation order (`partial`) or left with an
exception. Cash left over stays unapplied on the customer and is tried again on
later nights.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.config.client import ClientConfig
from engine.config.matching import Matching, Strategy, Tolerance
from engine.config.ruleset import RuleSet
from engine.dsl.compile import bind_as_of, literal
from engine.exceptions import Problem
from engine.executor import Executor
from engine.money import decimals
from engine.stages import cash_sql as sql_text
from engine.stages import combination
from engine.stages.sql import Statement, round_minor, template

COMPONENT_TYPES = {"fees": ("fee",), "interest": ("interest",)}


@dataclass
class Applied:
    """What the stage made: the cash_applications rows and the problems it found."""

    applications: pa.Table
    problems: list[Problem]
    unmatched: int  # tonight's payments no strategy matched
    # More problems, each list made when called: Python over rows read already, which the
    # run calls on its worker thread while DuckDB goes on.
    later: list[Callable[[], list[Problem]]]


# --- reference keys ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(year|seq(?::0(\d+))?)\}")
# ASCII separators, the no-break space and the Unicode dashes (U+2010 to U+2015)
SEPARATORS = r"[\s\-_#./:\x{00A0}\x{2010}-\x{2015}]*"


def reference_pattern(fmt: str) -> tuple[str, list[tuple[str, str | int]]]:
    """A regex finding numbers of `fmt` in free text, and how to build each one's key.

    Letters match in any case; every separator of the format (and none) matches any
    run of spaces, dashes, '#', '_', '.', '/' or ':'. A number starts the text or
    follows a non-letter or 'inv', and no digit may follow it. A padded sequence has
    exactly its width (or more digits without a leading zero), so a typo with a digit
    too many or too few names no invoice rather than another one. The parts are
    ("text", "NW"), ("year", group) and ("seq", group) in format order."""
    pattern = [r"(?i)(?:^|[^a-z0-9]|inv)"]
    parts: list[tuple] = []
    group = 0
    pos = 0
    for m in _PLACEHOLDER.finditer(fmt):
        pattern.append(_literal(fmt[pos:m.start()], parts))
        group += 1
        if m.group(1) == "year":
            pattern.append(r"(\d{4})")
            parts.append(("year", group))
        else:
            width = int(m.group(2) or 0)
            pattern.append(rf"(\d{{{width}}}|[1-9]\d{{{width},}})" if width else r"([1-9]\d*)")
            parts.append(("seq", group))
        pos = m.end()
    pattern.append(_literal(fmt[pos:], parts))
    pattern.append(r"(?:\b|[a-z])")
    return "".join(pattern), parts


def _literal(text: str, parts: list[tuple]) -> str:
    out = []
    for chunk in re.findall(r"[A-Za-z0-9]+|[^A-Za-z0-9]+", text):
        if chunk[0].isalnum():
            out.append(re.escape(chunk))
            parts.append(("text", chunk.upper()))
        else:
            out.append(SEPARATORS)
    return "".join(out)


def reference_key(fmt: str, found: exp.Expression) -> exp.Expression:
    """The item key (`NW2026000041`) of a number of `fmt` as found in a text."""
    pattern, parts = reference_pattern(fmt)
    pieces: list[exp.Expression] = []
    for part in parts:
        if part[0] == "text":
            pieces.append(exp.Literal.string(part[1]))
            continue
        pieces.append(exp.Anonymous(this="regexp_extract", expressions=[
            found.copy(), exp.Literal.string(pattern), exp.Literal.number(part[1])]))
    out = pieces[0]
    for piece in pieces[1:]:
        out = exp.DPipe(this=out, expression=piece)
    return out


def references(formats: list[str]) -> exp.Expression:
    """`cash_refs`: (payment_id, ref_key) of every number of `formats` in a reference."""
    selects = []
    for fmt in formats:
        pattern, _parts = reference_pattern(fmt)
        selects.append(template(sql_text.REFS, pattern=pattern,
                                key=reference_key(fmt, exp.column("found"))))
    union = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=True)
    return exp.Create(this=exp.to_table("cash_refs"), kind="TABLE", replace=True,
                      properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
                      expression=union)


# --- tolerance as SQL ---------------------------------------------------------------

def within(tolerance: Tolerance, difference: exp.Expression,
           open_amount: exp.Expression) -> exp.Expression:
    """SQL of `Tolerance.allows`: `difference` (>= 0) within the tolerance."""
    conds: list[exp.Expression] = []
    if tolerance.absolute is not None:
        conds.append(exp.LTE(this=difference.copy(), expression=literal(tolerance.absolute)))
    if tolerance.percent is not None:
        conds.append(exp.LTE(this=difference.copy(), expression=exp.Mul(
            this=literal(tolerance.percent), expression=open_amount.copy())))
    if not conds:
        return exp.EQ(this=difference.copy(), expression=exp.Literal.number(0))
    return exp.and_(*conds)


def _discounted(tolerance: Tolerance, short: exp.Expression, discount: exp.Expression,
                open_amount: exp.Expression) -> exp.Expression:
    """Short by about the discount: nearer it than nothing, and within tolerance of it."""
    off = exp.Abs(this=exp.Sub(this=short.copy(), expression=discount.copy()))
    return exp.Paren(this=exp.and_(
        exp.GT(this=discount.copy(), expression=exp.Literal.number(0)),
        exp.LT(this=off.copy(), expression=short.copy()),
        within(tolerance, off, open_amount)))


def fits(tolerance: Tolerance, cash: exp.Expression, open_amount: exp.Expression,
         discount: exp.Expression) -> exp.Expression:
    """SQL of `combination.terms(...) is not None` for one item."""
    short = exp.Paren(this=exp.Sub(this=open_amount.copy(), expression=cash.copy()))
    over = exp.Sub(this=cash.copy(), expression=open_amount.copy())
    return exp.Paren(this=exp.or_(
        exp.and_(exp.LTE(this=short.copy(), expression=exp.Literal.number(0)),
                 within(tolerance, over, open_amount)),
        exp.and_(exp.GT(this=short.copy(), expression=exp.Literal.number(0)),
                 exp.or_(_discounted(tolerance, short, discount, open_amount),
                         within(tolerance, short, open_amount)))))


def distance(tolerance: Tolerance, cash: exp.Expression, open_amount: exp.Expression,
             discount: exp.Expression) -> exp.Expression:
    """How far the payment is from settling the item: over, off the discount, or short."""
    short = exp.Paren(this=exp.Sub(this=open_amount.copy(), expression=cash.copy()))
    off = exp.Abs(this=exp.Sub(this=short.copy(), expression=discount.copy()))
    return exp.Case(ifs=[
        exp.If(this=exp.LTE(this=short.copy(), expression=exp.Literal.number(0)),
               true=exp.Neg(this=short.copy())),
        exp.If(this=_discounted(tolerance, short, discount, open_amount), true=off)],
        default=short.copy())


# --- the plan -----------------------------------------------------------------------

def _flag(strategy: Strategy) -> exp.Expression:
    return exp.column(f"w{strategy.index}", table="p")


def _component(matching: Matching) -> exp.Expression:
    """Each item's place in the allocation order: fees, interest, principal as configured."""
    item_type = exp.column("item_type", table="o")
    ifs = []
    for rank, name in enumerate(matching.components):
        types = COMPONENT_TYPES.get(name)
        if types:
            ifs.append(exp.If(this=exp.In(this=item_type.copy(), expressions=[
                exp.Literal.string(t) for t in types]), true=exp.Literal.number(rank)))
    return exp.Case(ifs=ifs, default=exp.Literal.number(matching.components.index("principal")))


def setup_statements(ruleset: RuleSet, matching: Matching) -> list[Statement]:
    """The payments (with each strategy's `when`), the items and the reference keys."""
    client = ruleset.client
    payments = template(sql_text.PAYMENTS)
    for s in matching.strategies:
        cond = exp.true() if s.when is None else exp.Coalesce(
            this=exp.Paren(this=s.when.sql.copy()), expressions=[exp.false()])
        payments.args["expression"].select(exp.alias_(cond, f"w{s.index}"), copy=False)
    items = template(sql_text.ITEMS, discount=_discount(client),
                     discount_days=client.discount_days, component=_component(matching))
    if not matching.oldest_first:
        window = items.find(exp.Window)
        for ordered in window.find_all(exp.Ordered):
            if ordered.this.name in ("due_date", "invoice_id"):
                ordered.set("desc", True)
    refs = references([client.invoice_format, client.credit_note_format])
    return [Statement("cash_pay", payments), Statement("cash_items", items),
            Statement("cash_refs", refs), Statement("cash_apps", template(sql_text.APPS))]


def _discount(client: ClientConfig) -> exp.Expression:
    """The early-payment discount of an item: its original amount x percent, rounded."""
    if client.discount_percent is None:
        return exp.Literal.number(0)
    product = exp.Mul(this=exp.cast(exp.column("amount_original", table="o"), "DECIMAL(38,4)"),
                      expression=literal(client.discount_percent))
    return round_minor(product, exp.column("minor", table="cur"), client.rounding)


def round_statements(strategy: Strategy) -> list[Statement]:
    """One round of a SQL strategy: candidates, picks, the payments that go."""
    flag = _flag(strategy)
    if strategy.type == "reference":
        cand = template(sql_text.REFERENCE_CANDIDATES, flag=flag)
        pick = template(sql_text.REFERENCE_PICK)
    else:
        disc = exp.Case(ifs=[exp.If(
            this=exp.and_(
                exp.LTE(this=exp.column("received_on", table="p"),
                        expression=exp.column("discount_until", table="i")),
                exp.EQ(this=exp.column("open_amount", table="i"),
                       expression=exp.column("amount_original", table="i"))),
            true=exp.column("discount", table="i"))], default=exp.Literal.number(0))
        args = (strategy.tolerance, exp.column("cash", table="p"),
                exp.column("open_amount", table="i"), disc)
        cand = template(sql_text.AMOUNT_CANDIDATES, flag=flag, fits=fits(*args),
                        distance=distance(*args))
        pick = template(sql_text.AMOUNT_PICK,
                        tie_exception=exp.Boolean(this=strategy.tie_break == "exception"))
    return [Statement(f"{strategy.id}: candidates", cand), Statement(f"{strategy.id}: pick", pick),
            Statement(f"{strategy.id}: go", template(sql_text.GO))]


def settle_statements(strategy: Strategy) -> list[Statement]:
    """Settle the payments that go, and book what they apply."""
    short = exp.Paren(this=exp.Sub(this=exp.column("total_open"),
                                   expression=exp.column("cash_in")))
    total = exp.column("total_open")
    settle = template(sql_text.SETTLE,
                      discounted=_discounted(strategy.tolerance, short, exp.column("total_disc"),
                                             total),
                      within=within(strategy.tolerance, short, total))
    short_exception = exp.Boolean(this=strategy.type == "reference"
                                  and strategy.on_short == "exception")
    subs = {"strategy": strategy.index, "short_exception": short_exception}
    return [Statement(f"{strategy.id}: settle", settle),
            Statement(f"{strategy.id}: apply", template(sql_text.APPLY_ROWS, **subs)),
            Statement(f"{strategy.id}: reduce items", template(sql_text.APPLY_ITEMS, **subs)),
            Statement(f"{strategy.id}: reduce payments",
                      template(sql_text.APPLY_PAYMENTS, strategy=strategy.index,
                               short_exception=short_exception))]


def plan(ruleset: RuleSet, matching: Matching) -> list[Statement]:
    """Every statement of the stage, for `ruledger compile` (rounds repeat at run time)."""
    out = setup_statements(ruleset, matching)
    for s in matching.strategies:
        if s.type == "combination":
            out.append(Statement(f"{s.id}: the payer's items for the bounded search",
                                 template(sql_text.COMBINATION_INPUT, flag=_flag(s))))
            out += settle_statements(s)
        else:
            out += round_statements(s) + settle_statements(s)
    out.append(Statement("cash_apps: what stays unapplied", template(sql_text.REST)))
    return out


def strategies_table(matching: Matching) -> pa.Table:
    return pa.table({
        "idx": pa.array([s.index for s in matching.strategies], pa.int32()),
        "strategy_id": pa.array([s.id for s in matching.strategies], pa.string()),
        "rule_ref": pa.array([s.rule_ref for s in matching.strategies], pa.string()),
        "tolerance_ref": pa.array([(s.tolerance.ref or s.ref).rule_ref
                                   for s in matching.strategies], pa.string()),
    })


# --- the run ------------------------------------------------------------------------

def run(executor: Executor, ruleset: RuleSet, matching: Matching, as_of: dt.date) -> Applied:
    """Match tonight's payments and the carried unapplied cash; read what was applied."""
    executor.register("cash_strategies", strategies_table(matching))

    def execute(statements: list[Statement]) -> None:
        for statement in statements:
            executor.execute(bind_as_of(statement.tree, as_of))

    execute(setup_statements(ruleset, matching))
    problems: list[Problem] = []
    later: list[Callable[[], list[Problem]]] = []
    searched: dict[str, tuple[Strategy, combination.Found]] = {}
    for strategy in matching.strategies:
        if strategy.type == "combination":
            searched.update(_combination(executor, strategy, execute))
            continue
        while True:
            execute(round_statements(strategy))
            problems += _ambiguous(executor, strategy)
            deferred = executor.query(sql_text.DEFERRED)[0][0]
            execute(settle_statements(strategy))
            later.append(_short(executor, strategy))
            if not deferred:
                break
    execute([Statement("rest", template(sql_text.REST))])
    later.append(_leftovers(executor, matching))
    unmatched = _unmatched(executor, matching, searched)
    applications = executor.fetch(template(sql_text.APPLICATIONS,
                                           unmatched_ref=matching.ref.rule_ref))
    return Applied(applications, problems, unmatched.count, [*later, unmatched])


def _combination(executor: Executor, strategy: Strategy, execute,
                 ) -> dict[str, tuple[Strategy, combination.Found]]:
    """The bounded search for each payment still open, payment by payment in order of
    receipt; each match takes its items out of the pool of the payments after it."""
    # Read as Arrow, a column at a time: DuckDB's row-by-row conversion of decimals to
    # Python was most of the time of this step. A payment's rows come together, so each
    # payment is a run of rows: its id and cash are read once, at the run's start.
    found = executor.fetch(template(sql_text.COMBINATION_INPUT, flag=_flag(strategy)))
    runs = pc.run_end_encode(found.column(0).combine_chunks())
    ends = runs.run_ends.to_pylist()
    starts = [0, *ends[:-1]] if ends else []
    items = list(map(combination.Item, found.column(2).to_pylist(),
                     decimals(found.column(3)), decimals(found.column(4)),
                     found.column(5).to_pylist()))
    payments = zip(runs.values.to_pylist(),
                   decimals(found.column(1).take(pa.array(starts, pa.int64()))),
                   starts, ends, strict=True)
    taken: set[str] = set()
    picks: list[tuple[str, str]] = []
    searched = {}
    for pid, cash, start, end in payments:
        pool = [i for i in items[start:end] if i.invoice_id not in taken]
        found = combination.search(cash, pool, strategy.max_items, strategy.tolerance)
        searched[pid] = (strategy, found)
        if found.outcome == "match":
            taken.update(i.invoice_id for i in found.items)
            picks += [(pid, i.invoice_id) for i in found.items]
    executor.register("cash_combination", pa.table({
        "payment_id": pa.array([p for p, _ in picks], pa.string()),
        "invoice_id": pa.array([i for _, i in picks], pa.string())}))
    execute([Statement("cash_go", template(sql_text.COMBINATION_GO))])
    execute(settle_statements(strategy))
    return searched


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _per_payment(rows: list[tuple]) -> tuple[dict[str, list], set[str], dict[str, str]]:
    """Rows of (payment, item, amount, cash, currency, origin, customer) grouped per
    payment; the carried payments among them; each payment's customer."""
    by_payment: dict[str, list] = defaultdict(list)
    carried, customers = set(), {}
    for pid, invoice_id, amount, cash, currency, origin, customer in rows:
        customers[pid] = customer
        by_payment[pid].append((invoice_id, amount, cash, currency))
        if origin == "carried":
            carried.add(pid)
    return by_payment, carried, customers


def _ambiguous(executor: Executor, strategy: Strategy) -> list[Problem]:
    by_payment, carried, customers = _per_payment(executor.query(sql_text.AMBIGUOUS_ROWS))
    if by_payment:
        executor.query(sql_text.MARK_EXCEPTION, ["AMOUNT_AMBIGUOUS", strategy.index,
                                                 list(by_payment)])
    out = []
    for pid, items in by_payment.items():
        if pid in carried:  # raised the night it came in; it waits for a person
            continue
        _i, _o, cash, currency = items[0]
        names = ", ".join(f"{i} ({_money(o)})" for i, o, _c, _cur in items)
        out.append(Problem(
            "warning", "AMOUNT_AMBIGUOUS", "matching", "payment", pid,
            f"payment {pid} of {_money(cash)} {currency} fits {len(items)} open items: {names}; "
            f"tie_break of {strategy.id} is exception, so it stays unapplied for a person to "
            "decide", strategy.id, strategy.rule_ref,
            details={"customer_id": customers.get(pid),
                     "candidates": [{"invoice_id": i, "open_amount": str(o)}
                                    for i, o, _c, _cur in items]}))
    return out


def _short(executor: Executor, strategy: Strategy) -> Callable[[], list[Problem]]:
    """The payments this round of `strategy` found short beyond its tolerance: marked as
    exceptions now when on_short says so; their problems made when called."""
    rows = executor.query(sql_text.SHORT_ROWS)
    if rows and strategy.on_short == "exception":
        executor.query(sql_text.MARK_EXCEPTION, ["PAYMENT_SHORT", strategy.index,
                                                 list(dict.fromkeys(r[0] for r in rows))])
    return partial(_short_problems, strategy, rows)


def _short_problems(strategy: Strategy, rows: list[tuple]) -> list[Problem]:
    by_payment, carried, customers = _per_payment(rows)
    out = []
    exception = strategy.on_short == "exception"
    tol = strategy.tolerance.describe()
    for pid, items in by_payment.items():
        if exception and pid in carried:  # raised the night it came in
            continue
        _i, total, cash, currency = items[0]
        ids = ", ".join(i for i, *_ in items)
        if exception:
            out.append(Problem(
                "warning", "PAYMENT_SHORT", "matching", "payment", pid,
                f"payment {pid} of {_money(cash)} {currency} names {ids} ({_money(total)} open) "
                f"and is {_money(total - cash)} short, beyond the tolerance of {strategy.id} "
                f"({tol}); on_short is exception, so it stays unapplied",
                strategy.id, strategy.rule_ref,
                details={"customer_id": customers[pid], "invoices": [i for i, *_ in items],
                         "open_amount": str(total), "short": str(total - cash)}))
        else:
            out.append(Problem(
                "info", "PARTIAL_PAYMENT", "matching", "payment", pid,
                f"payment {pid} of {_money(cash)} {currency} is {_money(total - cash)} short of "
                f"{ids} ({_money(total)} open), beyond the tolerance of {strategy.id} ({tol}); "
                "applied in part, the rest stays open", strategy.id, strategy.rule_ref,
                details={"customer_id": customers[pid], "invoices": [i for i, *_ in items],
                         "open_amount": str(total), "short": str(total - cash)}))
    return out


def _leftovers(executor: Executor, matching: Matching) -> Callable[[], list[Problem]]:
    """An info for each matched payment of tonight with cash left over, made when called."""
    return partial(_overpaid, matching, executor.query(
        "SELECT p.payment_id, p.cash, p.currency, coalesce(p.customer_id, p.match_customer), "
        "p.strategy_idx FROM cash_pay AS p WHERE p.state = 'matched' AND p.cash > 0 "
        "AND p.origin = 'drop' ORDER BY p.payment_id"))


def _overpaid(matching: Matching, rows: list[tuple]) -> list[Problem]:
    out = []
    for pid, cash, currency, customer, idx in rows:
        strategy = matching.strategies[idx]
        out.append(Problem(
            "info", "OVERPAYMENT", "matching", "payment", pid,
            f"payment {pid} paid {_money(cash)} {currency} more than the items {strategy.id} "
            f"matched; it stays as unapplied cash on customer {customer} and is tried again "
            "on later nights", strategy.id, strategy.rule_ref,
            details={"unapplied": str(cash), "customer_id": customer}))
    return out


@dataclass
class _Unmatched:
    """Tonight's payments no strategy matched, and what their problems are made of: read
    from DuckDB by the stage, made into messages when called (on the run's worker thread,
    beside the statements after matching)."""

    matching: Matching
    searched: dict[str, tuple[Strategy, combination.Found]]
    payments: list[tuple] = field(default_factory=list)
    flags: dict[str, tuple] = field(default_factory=dict)
    candidates: dict[str, list[tuple]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.payments)

    def __call__(self) -> list[Problem]:
        """A warning for each, with the best three candidates and why each failed."""
        matching, candidates = self.matching, self.candidates
        allows = {s.index: f"{s.id} allows {s.tolerance.describe()}"
                  for s in matching.strategies if s.type != "reference"}
        out = []
        for pid, customer, currency, _received, cash, reference in self.payments:
            applies = [s for s, on in zip(matching.strategies, self.flags[pid], strict=True)
                       if on]
            tolerances = ", ".join(allows[s.index] for s in applies if s.index in allows)
            ranked = sorted(candidates.get(pid, []),
                            key=lambda c: (not c[7], c[5] is not None, c[2] != currency,
                                           abs(c[8] - cash), c[0]))[:3]
            listed = [{"invoice_id": c[0], "open_amount": str(c[4]), "currency": c[2],
                       "why_not": _why_not(c, customer, currency, cash, applies, tolerances)}
                      for c in ranked]
            named = {c[1] for c in candidates.get(pid, []) if c[7] and c[2] == currency}
            why = _payment_why(customer, reference, named, applies, self.searched.get(pid))
            text = f"payment {pid} of {_money(cash)} {currency}"
            text += f" from customer {customer}" if customer else " from an unidentified payer"
            text += f" matches no strategy ({why}); it stays as unapplied cash"
            if listed:
                text += ". Best candidates: " + "; ".join(
                    f"{c['invoice_id']} ({c['why_not']})" for c in listed)
            out.append(Problem("warning", "PAYMENT_UNMATCHED", "matching", "payment", pid, text,
                               None, matching.ref.rule_ref,
                               details={"customer_id": customer, "candidates": listed,
                                        "why": why}))
        return out


def _unmatched(executor: Executor, matching: Matching,
               searched: dict[str, tuple[Strategy, combination.Found]]) -> _Unmatched:
    """Tonight's payments no strategy matched, with their candidates."""
    found = _Unmatched(matching, searched, executor.query(sql_text.UNMATCHED_PAYMENTS))
    if not found.payments:
        return found
    found.flags = {row[0]: row[1:] for row in executor.query(
        "SELECT payment_id, " + ", ".join(f"w{s.index}" for s in matching.strategies)
        + " FROM cash_pay WHERE state = 'open' AND origin = 'drop'")}
    candidates = defaultdict(list)
    for row in executor.query(sql_text.UNMATCHED_CANDIDATES):
        candidates[row[0]].append(row[1:])
    found.candidates = dict(candidates)
    return found


def _payment_why(customer, reference, named: set[str], applies: list[Strategy],
                 searched: tuple[Strategy, combination.Found] | None) -> str:
    """`named`: the customers of the invoices in the payment's currency its reference names."""
    reasons = []
    if not applies:
        return "no strategy's `when` holds for it"
    if not customer:
        reasons.append("the payer is unknown, so only a reference can match")
    if not reference:
        reasons.append("there is no reference")
    elif not named:
        reasons.append("the reference names no invoice in its currency")
    elif not customer and len(named) > 1:
        reasons.append(f"the reference names invoices of {len(named)} customers "
                       f"({', '.join(sorted(named))})")
    if searched is not None:
        strategy, found = searched
        reasons.append({
            "none": f"{strategy.id} found no set of up to {strategy.max_items} items",
            "ambiguous": f"{strategy.id} found more than one set: "
                         f"{', '.join(i.invoice_id for i in found.items)} and "
                         f"{', '.join(i.invoice_id for i in found.other)}",
            "limit": f"{strategy.id} gave up after {found.steps:,} steps of its bounded search",
            "match": f"{strategy.id} found a set",
        }[found.outcome])
    return "; ".join(reasons) or "no open item fits"


def _why_not(c: tuple, customer, currency: str, cash: Decimal, applies: list[Strategy],
             tolerances: str) -> str:
    """Why candidate `c` did not match; `tolerances`: those of the strategies that
    apply, but reference."""
    (invoice_id, item_customer, item_currency, _due, open_amount, closed_on, disputed, named,
     open_start, paid_by) = c
    if closed_on is not None:
        return f"already settled on {closed_on}"
    if not open_amount:
        same = " for the same amount: a duplicate payment?" if open_start == cash else ""
        return f"settled tonight by payment {paid_by}{same}"
    if item_currency != currency:
        return f"in {item_currency}, the payment is in {currency}"
    if customer and item_customer != customer:
        return f"customer {item_customer}'s, the payer is {customer}"
    if named and not any(s.type == "reference" for s in applies):
        return "named in the reference, but no reference strategy applies to this payment"
    if disputed and not named:
        return "under dispute: matched only when the reference names it"
    diff = open_amount - cash
    side = f"{_money(abs(diff))} {'short' if diff > 0 else 'over'}"
    return f"open {_money(open_amount)}, the payment is {side}" + (
        f" ({tolerances})" if tolerances else "")


# --- the subledger --------------------------------------------------------------------

def post(executor: Executor, as_of: dt.date, run_id: str) -> None:
    """Tonight's applications into the subledger: open items reduced or closed, unapplied
    cash carried, tonight's payments processed."""
    executor.query(sql_text.CLOSE_ITEMS, [as_of])
    executor.query(sql_text.CARRY, [as_of])
    executor.query(sql_text.UNAPPLY, [as_of])
    executor.query(sql_text.PROCESSED, [as_of, run_id])
