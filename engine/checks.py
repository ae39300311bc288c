"""Typing and checking drop rows in one SQL pass: a check is a query for bad rows.

`row_checks` lists, per column, how its text becomes a typed value and what
makes a value bad; `reject_split` runs them over a raw table, keeps the accepted
rows (canonical schema) in a DuckDB table and returns the rejects (file, row,
column, value, reason). Business-key checks that need the state store (unknown customer,
processed ids) are in `engine.references`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import pyarrow as pa
from iso3166 import countries
from iso4217 import Currency
from sqlglot import exp

from engine import tables
from engine.config.client import InputMapping
from engine.config.ruleset import RuleSet
from engine.dsl.compile import bind_as_of, literal
from engine.executor import Executor
from engine.readers import ROW, exact

FILE = "__file"
MAX_LINE_AMOUNT = 10**12  # a line's amount; invoices of many lines still fit DECIMAL(18,4)
_CURRENCY_COLUMNS = {"currency", "from_currency", "to_currency"}
_COUNTRY_COLUMNS = {"country", "ship_to_country"}
_REGION_COLUMNS = {"region", "ship_to_region"}
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


@dataclass(frozen=True)
class Check:
    """Rows where `ok` is false are rejected, naming `column` and `reason`."""

    column: str
    ok: exp.Expression
    reason: str


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _text(name: str) -> exp.Expression:
    """The raw text, trimmed, with '' as null."""
    return exp.Nullif(this=exp.Trim(this=_col(name)), expression=exp.Literal.string(""))


def _raw(name: str) -> str:
    return f"__raw_{name}"


def _like(value: exp.Expression, pattern: str) -> exp.Expression:
    return exp.RegexpLike(this=value, expression=exp.Literal.string(pattern))


def _number_text(text: exp.Expression, mapping: InputMapping | None) -> exp.Expression:
    text = exp.Anonymous(this="REPLACE", expressions=[text.copy(), exp.Literal.string(" "),
                                                      exp.Literal.string("")])
    if mapping and mapping.decimal_comma:
        no_thousands = exp.Anonymous(this="REPLACE", expressions=[
            text, exp.Literal.string("."), exp.Literal.string("")])
        return exp.Anonymous(this="REPLACE", expressions=[
            no_thousands, exp.Literal.string(","), exp.Literal.string(".")])
    return text


def parse_expr(text: exp.Expression, typ: pa.DataType,
               mapping: InputMapping | None) -> exp.Expression:
    """The value of type `typ` that `text` (trimmed, '' as null) writes; null when it
    does not parse."""
    if pa.types.is_decimal(typ):
        number = _number_text(text, mapping)
        shape = _like(number, rf"^[+-]?\d+(\.\d{{0,{typ.scale}}})?$")
        if mapping and mapping.decimal_comma:  # dots only as thousands: 1.234.567,89
            written = exp.Anonymous(this="REPLACE", expressions=[
                text.copy(), exp.Literal.string(" "), exp.Literal.string("")])
            shape = exp.and_(shape, _like(written, r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"))
        target = exp.DataType.build(f"DECIMAL({typ.precision},{typ.scale})")
        return exp.Case(ifs=[exp.If(this=shape, true=exp.TryCast(this=number, to=target))])
    if pa.types.is_integer(typ):
        shape = _like(text, r"^[+-]?\d+$")
        whole = exp.TryCast(this=text, to=exp.DataType.build("BIGINT"))
        return exp.Case(ifs=[exp.If(this=shape, true=whole)])
    if pa.types.is_boolean(typ):
        lower = exp.Lower(this=text)
        return exp.Case(ifs=[
            exp.If(this=exp.In(this=lower, expressions=[exp.Literal.string(v) for v in _TRUE]),
                   true=exp.true()),
            exp.If(this=exp.In(this=lower, expressions=[exp.Literal.string(v) for v in _FALSE]),
                   true=exp.false())])
    if pa.types.is_date(typ):
        if mapping and mapping.date_format:
            return exp.StrToDate(this=text, format=exp.Literal.string(mapping.date_format),
                                 safe=True)
        shape = _like(text, r"^\d{4}-\d{2}-\d{2}$")
        day = exp.TryCast(this=text, to=exp.DataType.build("DATE"))
        return exp.Case(ifs=[exp.If(this=shape, true=day)])
    return text


def _exact_value(name: str, typ: pa.DataType, given: pa.DataType) -> exp.Expression | None:
    """The value of a column the file gives typed (`given`) as canonical type `typ`, where
    no text is needed: null when it does not fit (a decimal past the precision)."""
    value = _col(name)
    if pa.types.is_decimal(typ) and pa.types.is_decimal(given):
        fitted = exp.TryCast(this=value, to=_sql_type(typ))
        if given.scale <= typ.scale:
            return fitted
        # More places in the type than the column keeps: fine while they are zeros.
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=fitted.copy(), expression=value.copy()),
                                    true=fitted)])
    if pa.types.is_integer(typ) and pa.types.is_integer(given):
        return exp.TryCast(this=value, to=_sql_type(typ))
    if (pa.types.is_boolean(typ) and pa.types.is_boolean(given)) or (
            pa.types.is_date(typ) and pa.types.is_date32(given)):
        return value
    return None


def _typed_format(typ: pa.DataType, given: pa.DataType,
                  mapping: InputMapping | None) -> InputMapping | None:
    """The client's text format that applies to a column the file gives typed: a date
    written as a whole number (20260301) reads with the client's `date_format`; other
    typed values are written as SQL writes them (a decimal point, ISO dates)."""
    return mapping if pa.types.is_date(typ) and pa.types.is_integer(given) else None


def _given_text(name: str) -> exp.Expression:
    """The text of a typed value, as ingest shows it (decimals with every place, ISO
    dates, true/false)."""
    return exp.cast(_col(name), "VARCHAR")


def _parse_reason(typ: pa.DataType, mapping: InputMapping | None) -> str:
    if pa.types.is_decimal(typ):
        sep = "a decimal comma" if mapping and mapping.decimal_comma else "a decimal point"
        return f"not a decimal number with {sep} and at most {typ.scale} decimal places"
    if pa.types.is_integer(typ):
        return "not a whole number"
    if pa.types.is_boolean(typ):
        return "not true or false"
    if pa.types.is_date(typ):
        fmt = mapping.date_format if mapping and mapping.date_format else "%Y-%m-%d"
        return f"not a date in the format {fmt}"
    return "not valid"


@lru_cache(maxsize=1)
def _currencies() -> tuple[str, ...]:
    return tuple(sorted(c.code for c in Currency if c.exponent is not None))


@lru_cache(maxsize=1)
def _countries() -> tuple[str, ...]:
    return tuple(sorted(c.alpha2 for c in countries))


def _one_of(value: exp.Expression, values: tuple) -> exp.Expression:
    return exp.In(this=value, expressions=[exp.Literal.string(v) for v in values])


def _listed(value: exp.Expression, table: str) -> exp.Expression:
    """`value` is a code of the reference table `table` (see `reference_tables`)."""
    return exp.In(this=value, query=exp.Subquery(this=exp.select("code").from_(table)))


def reference_tables() -> dict[str, pa.Table]:
    """ISO 4217 currencies (with one minor unit) and ISO 3166-1 countries, registered for
    the checks."""
    codes = _currencies()
    exponents = {c.code: c.exponent for c in Currency if c.exponent is not None}
    units = [Decimal(1).scaleb(-exponents[c]) for c in codes]
    return {"iso_currencies": pa.table({"code": list(codes),
                                        "unit": pa.array(units, pa.decimal128(18, 4))}),
            "iso_countries": pa.table({"code": list(_countries())})}


# Amounts of money that was paid or is owed: whole minor units of their currency.
_WHOLE_UNITS = {("payments", "amount"), ("open_orders", "amount"),
                ("opening_items", "amount_open")}


def _whole_units(value: exp.Expression) -> exp.Expression:
    """No currency of the row's whose minor unit `value` is not a multiple of."""
    odd = exp.select("1").from_(exp.alias_(exp.to_table("iso_currencies"), "c", table=True)).where(
        exp.and_(exp.EQ(this=exp.column("code", table="c"), expression=_col("currency")),
                 exp.NEQ(this=exp.Mod(this=value.copy(), expression=exp.column("unit", table="c")),
                         expression=exp.Literal.number(0))))
    return exp.not_(exp.Exists(this=odd))


def _region_country(table: str) -> str | None:
    return {"customers": "country", "transactions": "ship_to_country"}.get(table)


def _domain_checks(table: str, name: str, typ: pa.DataType) -> list[Check]:
    """Checks of one value's meaning: ISO codes, signs, plausible dates."""
    value = _col(name)
    null = exp.Is(this=value, expression=exp.null())
    checks = []
    if name in _CURRENCY_COLUMNS:
        checks.append(Check(name, exp.or_(null, _listed(value, "iso_currencies")),
                            "not an ISO 4217 currency code"))
    elif name in _COUNTRY_COLUMNS:
        hint = "not an ISO 3166-1 alpha-2 country code (GB, not UK; GR, not EL)"
        checks.append(Check(name, exp.or_(null, _listed(value, "iso_countries")), hint))
    elif name in _REGION_COLUMNS:
        shape = _like(value, r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
        checks.append(Check(name, exp.or_(null, shape),
                            "not an ISO 3166-2 region code such as US-CA"))
        country = _region_country(table)
        if country:
            same = exp.EQ(this=exp.Substring(this=value.copy(), start=exp.Literal.number(1),
                                             length=exp.Literal.number(2)),
                          expression=_col(country))
            unknown = exp.Is(this=_col(country), expression=exp.null())
            checks.append(Check(name, exp.or_(null.copy(), unknown, same),
                                f"the region is not in the {country}"))
    if pa.types.is_date(typ):
        year = exp.Year(this=value.copy())
        plausible = exp.Between(this=year, low=exp.Literal.number(1900),
                                high=exp.Literal.number(2199))
        checks.append(Check(name, exp.or_(null.copy(), plausible),
                            "not a plausible date (a year between 1900 and 2199)"))
    positive = {("payments", "amount"), ("fx_rates", "rate")}
    if (table, name) in positive:
        above_zero = exp.GT(this=value, expression=exp.Literal.number(0))
        checks.append(Check(name, exp.or_(null, above_zero), "must be greater than zero"))
    if (table, name) in _WHOLE_UNITS:
        checks.append(Check(name, exp.or_(null.copy(), _whole_units(value)),
                            "more decimal places than the currency has (an amount of money "
                            "is a whole number of cents, or of the currency's minor unit)"))
    if (table, name) == ("transactions", "unit_price"):
        product = exp.Abs(this=exp.Mul(this=exp.cast(_col("quantity"), "DECIMAL(38,6)"),
                                       expression=exp.cast(value.copy(), "DECIMAL(38,6)")))
        fits = exp.LT(this=product, expression=exp.Literal.number(MAX_LINE_AMOUNT))
        unknown = exp.Is(this=_col("quantity"), expression=exp.null())
        checks.append(Check(name, exp.or_(null.copy(), unknown, fits),
                            f"quantity x unit_price must stay below {MAX_LINE_AMOUNT:,}"))
    if (table, name) == ("customers", "payment_terms_days"):
        not_negative = exp.GTE(this=value, expression=exp.Literal.number(0))
        checks.append(Check(name, exp.or_(null, not_negative), "must not be negative"))
    if (table, name) == ("disputes", "status"):
        checks.append(Check(name, exp.or_(null, _one_of(value, ("open", "resolved"))),
                            "must be open or resolved"))
    return checks


def row_checks(table: str, present: list[str], mapping: InputMapping | None,
               ruleset: RuleSet, typed: dict[str, pa.DataType] | None = None) -> list[Check]:
    """Every check of one input table's rows, in column order. `typed`: the columns the
    file gives typed, which the client's text formats do not apply to (but for a date
    written as a whole number)."""
    schema = tables.INPUTS[table]
    out: list[Check] = []
    for f in schema:
        if f.name in present and not pa.types.is_string(f.type):
            parsed_ok = exp.or_(exp.Is(this=_col(_raw(f.name)), expression=exp.null()),
                                exp.not_(exp.Is(this=_col(f.name), expression=exp.null())))
            written = (_typed_format(f.type, typed[f.name], mapping)
                       if typed and f.name in typed else mapping)
            out.append(Check(f.name, parsed_ok, _parse_reason(f.type, written)))
        if not f.nullable:  # a value that is there but does not parse is reported above
            given = [exp.not_(exp.Is(this=_col(n), expression=exp.null()))
                     for n in (f.name, _raw(f.name))]
            out.append(Check(f.name, exp.or_(*given), "a value is required"))
        out += _domain_checks(table, f.name, f.type)
    return out


def _computed(mapping: InputMapping | None, ruleset: RuleSet,
              as_of: dt.date | None) -> dict[str, exp.Expression]:
    if not mapping:
        return {}
    out = {}
    for comp in mapping.computed:
        compiled = ruleset.expression("client", comp.path).sql
        out[comp.column] = bind_as_of(compiled, as_of) if as_of else compiled
    return out


def _select_typed(raw_name: str, table: str, present: list[str], mapping: InputMapping | None,
                  typed: dict[str, pa.DataType], file: exp.Expression) -> exp.Select:
    """Raw columns to typed canonical columns (absent optional ones as typed nulls), each
    with its raw value as __raw_<name>: the text, or the value of a typed column."""
    schema = tables.INPUTS[table]
    cols: list[exp.Expression] = [exp.alias_(file, FILE, quoted=True), _col(ROW)]
    for f in schema:
        sql_type = _sql_type(f.type)
        if f.name in typed:  # typed in the file: read as it is, or else as its text
            value = _exact_value(f.name, f.type, typed[f.name]) or parse_expr(
                _given_text(f.name), f.type, _typed_format(f.type, typed[f.name], mapping))
            cols.append(exp.alias_(exp.cast(value, sql_type), f.name, quoted=True))
            cols.append(exp.alias_(_col(f.name), _raw(f.name), quoted=True))
        elif f.name in present:
            cols.append(exp.alias_(exp.cast(parse_expr(_text(f.name), f.type, mapping),
                                            sql_type), f.name, quoted=True))
            cols.append(exp.alias_(_text(f.name), _raw(f.name), quoted=True))
        else:
            cols.append(exp.alias_(exp.cast(exp.null(), sql_type), f.name, quoted=True))
            cols.append(exp.alias_(exp.cast(exp.null(), "VARCHAR"), _raw(f.name), quoted=True))
    return exp.select(*cols).from_(raw_name)


def _sql_type(typ: pa.DataType) -> exp.DataType:
    if pa.types.is_decimal(typ):
        return exp.DataType.build(f"DECIMAL({typ.precision},{typ.scale})")
    return exp.DataType.build({"int64": "BIGINT", "bool": "BOOLEAN", "date32[day]": "DATE"}
                              .get(str(typ), "VARCHAR"))


# Documented defaults of optional input columns (SPEC section 2).
DEFAULTS: dict[tuple[str, str], object] = {
    ("customers", "tax_exempt"): False,
    ("transactions", "tax_category"): "standard",
    ("opening_items", "dunning_level"): 0,
}


def _with_computed(typed: exp.Select, computed: dict[str, exp.Expression],
                   table: str) -> exp.Select:
    """Computed columns replace or add canonical columns; then defaults fill gaps."""
    schema = tables.INPUTS[table]
    cols: list[exp.Expression] = [_col(FILE), _col(ROW)]
    for f in schema:
        value = computed.get(f.name)
        value = exp.cast(value, _sql_type(f.type)) if value is not None else _col(f.name)
        if (table, f.name) in DEFAULTS:
            value = exp.Coalesce(this=value, expressions=[literal(DEFAULTS[(table, f.name)])])
        cols.append(exp.alias_(value, f.name, quoted=True))
        cols.append(_col(_raw(f.name)))
    return exp.select(*cols).from_(typed.subquery("typed", copy=False), copy=False)


def _with_firsts(query: exp.Select, keys: tuple[str, ...]) -> exp.Select:
    """`query` with __first: for a key given in more than one row, the first row that gave
    it (null for a key given once). A grouping and a join of the few keys given twice:
    far cheaper than a window over every row. `query` is written out twice, not shared
    as a CTE: DuckDB would hold every row of a CTE over an Arrow scan, while the grouping
    reads the keys only."""
    shared = query.copy()
    firsts = exp.select(*[_col(k) for k in keys], exp.alias_(exp.Min(this=_col(ROW)), "__first")
                        ).from_(query.subquery("k", copy=False), copy=False).group_by(
        *[_col(k) for k in keys], copy=False).having(
        exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)), copy=False)
    on = exp.and_(*[exp.EQ(this=exp.column(k, table="c", quoted=True),
                           expression=exp.column(k, table="d", quoted=True)) for k in keys])
    return exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("c")),
                      exp.column("__first", table="d")).from_(
        shared.subquery("c", copy=False), copy=False).join(
        firsts.subquery("d", copy=False), on=on, join_type="left", copy=False)


def _dup_ok(keys: tuple[str, ...]) -> exp.Expression:
    """A row is not a repeat: its key is given once, this is its first row, or it has none."""
    return exp.or_(exp.Is(this=_col("__first"), expression=exp.null()),
                   exp.EQ(this=_col(ROW), expression=_col("__first")),
                   *[exp.Is(this=_col(k), expression=exp.null()) for k in keys])


def checked_query(source: str, table: str, present: list[str], mapping: InputMapping | None,
                  ruleset: RuleSet, as_of: dt.date | None = None,
                  typed: dict[str, pa.DataType] | None = None,
                  file_name: str | None = None) -> exp.Select:
    """The one statement that types and checks a raw table `source` of `table`, read
    from the file `file_name` (`:file` when not known); `typed`: the present columns the
    file gives typed rather than as text.

    Its rows are every input row with the typed canonical columns and, for a bad
    row, __col/__val/__why naming the first bad column, its text and every problem.
    """
    typed = {n: t for n, t in (typed or {}).items() if n in present}
    checks = row_checks(table, present, mapping, ruleset, typed)
    file = exp.Placeholder(this="file") if file_name is None else exp.Literal.string(file_name)
    rows = _select_typed(source, table, present, mapping, typed, file)
    query = _with_computed(rows, _computed(mapping, ruleset, as_of), table)
    keys = tables.INPUT_KEYS.get(table, ())
    if keys:
        query = _with_firsts(query, keys)
    items = _with_duplicates(checks, keys)
    # Each check once, as a column; the columns naming a bad row's faults read those.
    oks = exp.select("*", *[exp.alias_(c.ok, f"__ok{i}") for i, c in enumerate(items)]
                     ).from_(query.subquery("checked", copy=False), copy=False)
    # Only what the split keeps: the raw text and the check columns stay out of the sort.
    kept = [_col(name) for name in accepted_schema(table).names]
    return exp.select(*kept, *_reject_columns(items, keys)).from_(
        oks.subquery("oks", copy=False), copy=False).order_by(_col(ROW), copy=False)


class ScanFailed(Exception):
    """The check of a file DuckDB was to read itself failed (its cause says why)."""


class Optimizers:
    """DuckDB must not take a scanned file's own statistics for its values, since each is
    checked; the checks of rows read into Arrow need statistics (without them DuckDB's
    sort holds several times the memory). The setting is the database's, not a
    connection's, and tables are checked at once on several: checks of one kind run
    together, and one of the other kind waits until those are done."""

    def __init__(self):
        self._turn = threading.Condition()
        self._scanning = False  # DuckDB's default: statistics on
        self._running = 0

    @contextmanager
    def check(self, executor: Executor, scanned: bool) -> Iterator[None]:
        with self._turn:
            while self._running and self._scanning != scanned:
                self._turn.wait()
            if self._scanning != scanned:
                executor.execute("SET disabled_optimizers = 'statistics_propagation'"
                                 if scanned else "RESET disabled_optimizers")
                self._scanning = scanned
            self._running += 1
        try:
            yield
        finally:
            with self._turn:
                self._running -= 1
                self._turn.notify_all()

    def reset(self, executor: Executor) -> None:
        """DuckDB's default again, once every check is done."""
        if self._scanning:
            executor.execute("RESET disabled_optimizers")
            self._scanning = False


def reject_split(raw: pa.Table, table: str, mapping: InputMapping | None, ruleset: RuleSet,
                 executor: Executor, file_name: str, into: str, optimizers: Optimizers,
                 as_of: dt.date | None = None, scan: str | None = None) -> tuple[int, pa.Table]:
    """Check `raw`; add its accepted rows (the canonical schema plus __file/__row, in row
    order) to the DuckDB table `into`; return how many, and the rejects. With `scan` (a
    query reading the file), `raw` is the schema only and the rows are what `scan` reads.

    The checked rows are written to a DuckDB table, not read out: DuckDB holds them in
    its memory, under --memory-limit and spilled past it, and the later stages read them
    there. Its tables are the database's, not temporary ones of `executor`'s connection:
    the files of different tables are checked at once, each on a connection of its own."""
    name = f"raw_{table}"
    for ref_name, ref_table in reference_tables().items():
        executor.register(ref_name, ref_table)
    if scan is None:
        executor.register(name, raw)
    else:
        executor.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {scan}")
    present = [c for c in raw.column_names if c in tables.INPUTS[table].names]
    typed = {f.name: f.type for f in raw.schema if exact(f.type)}
    checked = f"checked_{table}"
    try:
        statement = exp.Create(
            this=exp.to_table(checked), kind="TABLE", replace=True,
            expression=checked_query(name, table, present, mapping, ruleset, as_of, typed,
                                     file_name))
        try:
            with optimizers.check(executor, scanned=scan is not None):
                executor.execute(statement)
        except Exception as exc:
            if scan is None:
                raise
            raise ScanFailed(file_name) from exc
    finally:
        if scan is None:
            executor.unregister(name)
        else:
            executor.execute(f"DROP VIEW IF EXISTS {name}")
    try:
        bad = exp.Not(this=exp.Is(this=_col("__col"), expression=exp.null()))
        rejects = executor.fetch(exp.select(
            *[exp.alias_(_col(c), n) for c, n in zip(
                (FILE, ROW, "__col", "__val", "__why"), REJECT_SCHEMA.names, strict=True)]
        ).from_(checked).where(bad).order_by(_col(ROW)))
        rows = executor.query(f"SELECT count(*) FROM {checked}")[0][0]
        _keep_accepted(executor, checked, bool(rejects.num_rows),
                       accepted_schema(table).names, into)
    finally:
        executor.execute(f"DROP TABLE IF EXISTS {checked}")
    return rows - rejects.num_rows, rejects.cast(REJECT_SCHEMA)


def _keep_accepted(executor: Executor, checked: str, any_rejects: bool, names: list[str],
                   into: str) -> None:
    """The accepted rows of the table `checked` into the table `into`: the first file's
    become that table (its reject columns dropped, no copy made), a later file's are
    added."""
    if executor.query(f"SELECT count(*) FROM {into}")[0][0]:
        columns = ", ".join(f'"{n}"' for n in names)
        executor.execute(f"INSERT INTO {into} SELECT {columns} FROM {checked} "
                         "WHERE __col IS NULL")
        return
    if any_rejects:
        executor.execute(f"DELETE FROM {checked} WHERE __col IS NOT NULL")
    for column in ("__col", "__val", "__why"):
        executor.execute(f"ALTER TABLE {checked} DROP COLUMN {column}")
    executor.execute(f"DROP TABLE {into}")
    executor.execute(f"ALTER TABLE {checked} RENAME TO {into}")


def _with_duplicates(checks: list[Check], keys: tuple[str, ...]) -> list[Check]:
    """The checks, and last the one that a key is not given twice."""
    items = list(checks)
    if keys:
        items.append(Check(keys[-1] if len(keys) == 1 else keys[0], _dup_ok(keys),
                           "__duplicate__"))
    return items


def _reject_columns(items: list[Check], keys: tuple[str, ...]) -> list[exp.Expression]:
    """__col, __val and __why: the first bad column, its text, and every problem; check i
    is read from its column __ok<i>."""
    bad = [exp.not_(_col(f"__ok{i}")) for i in range(len(items))]
    first_col = exp.Case(ifs=[exp.If(this=b, true=exp.Literal.string(c.column))
                              for b, c in zip(bad, items, strict=True)])
    first_val = exp.Case(ifs=[exp.If(this=b.copy(), true=exp.cast(_col(_raw(c.column)),
                                                                   "VARCHAR"))
                              for b, c in zip(bad, items, strict=True)])
    reasons = [exp.Case(ifs=[exp.If(this=b.copy(), true=_reason(c, keys))])
               for b, c in zip(bad, items, strict=True)]
    why = exp.Anonymous(this="CONCAT_WS", expressions=[exp.Literal.string("; "), *reasons])
    return [exp.alias_(first_col, "__col"), exp.alias_(first_val, "__val"),
            exp.alias_(why, "__why")]


def _reason(check: Check, keys: tuple[str, ...]) -> exp.Expression:
    if check.reason == "__duplicate__":
        label = " and ".join(keys)
        return exp.Concat(expressions=[
            exp.Literal.string(f"duplicate {label}: first given in row "),
            exp.cast(_col("__first"), "VARCHAR")])
    return exp.Literal.string(f"{check.column}: {check.reason}")


def accepted_schema(table: str) -> pa.Schema:
    """Accepted rows of an input table: its canonical columns, then __file and __row."""
    fields = [pa.field(f.name, f.type) for f in tables.INPUTS[table]]
    return pa.schema([*fields, pa.field(FILE, pa.string()), pa.field(ROW, pa.int64())])


REJECT_SCHEMA = pa.schema([("source_file", pa.string()), ("row_number", pa.int64()),
                           ("column", pa.string()), ("value", pa.string()),
                           ("reason", pa.string())])
