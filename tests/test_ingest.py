"""Ingest: each format, the client's mappings, and rejects that name file, row and column."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CUSTOMERS_CSV

from engine.config.ruleset import load_ruleset
from engine.errors import DropRefused
from engine.executor import DuckDBExecutor
from engine.ingest import check_reject_ratio, ingest
from engine.references import check_references
from engine.state import StateStore


def _ingest(rules, drop, as_of=dt.date(2026, 3, 2)):
    """The drop ingested; its accepted rows stay in the (open) DuckDB connection."""
    return ingest(drop, load_ruleset(rules), DuckDBExecutor(), as_of)


def _rejects(result):
    return [(r["source_file"], r["row_number"], r["column"], r["value"], r["reason"])
            for r in result.reject_table().to_pylist()]


def test_csv_rows_become_typed_canonical_rows(client_dir, drop_dir):
    result = _ingest(client_dir(), drop_dir(customers__csv=CUSTOMERS_CSV))
    rows = result.tables["customers"].to_pylist()
    assert [r["customer_id"] for r in rows] == ["C1", "C2", "C3"]
    assert [r["payment_terms_days"] for r in rows] == [30, None, 60]
    # tax_exempt: "false" and "no" parse; a blank takes the documented default false.
    assert [r["tax_exempt"] for r in rows] == [False, False, False]
    assert rows[2]["country"] == "NO" and rows[0]["region"] is None
    assert [(r["__file"], r["__row"]) for r in rows] == [("customers.csv", i) for i in (1, 2, 3)]
    assert result.files[0].rows == 3 and result.files[0].rejected == 0


TRANSACTIONS_CSV = """\
txn_id,customer_id,txn_date,product_code,quantity,unit_price,currency
T1,C1,2026-03-01,P1,2,10.50,EUR
T2,C1,01.03.2026,P1,1,5,EUR
T3,C1,2026-03-01,P1,1,5.1234567,EUR
T4,C1,2026-03-01,,1,5,EUR
T5,C1,2026-03-01,P1,1,5,EURO
T1,C2,2026-03-01,P1,3,1,EUR
T6,C2,2026-02-30,P1,x,1,EUR
T7,C2,2026-03-01,P1,-1,0.35,EUR
"""


def test_bad_rows_are_rejected_with_row_column_value_and_reason(client_dir, drop_dir):
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, transactions__csv=TRANSACTIONS_CSV)
    result = _ingest(client_dir(), drop)
    accepted = result.tables["transactions"].to_pylist()
    assert [r["txn_id"] for r in accepted] == ["T1", "T7"]
    assert accepted[0]["quantity"] == Decimal("2") and accepted[0]["unit_price"] == Decimal("10.5")
    assert accepted[1]["quantity"] == Decimal("-1")
    assert accepted[0]["txn_date"] == dt.date(2026, 3, 1)
    assert accepted[0]["tax_category"] == "standard"  # the documented default
    rejects = _rejects(result)
    assert rejects == [
        ("transactions.csv", 2, "txn_date", "01.03.2026",
         "txn_date: not a date in the format %Y-%m-%d"),
        ("transactions.csv", 3, "unit_price", "5.1234567",
         "unit_price: not a decimal number with a decimal point and at most 6 decimal places"),
        ("transactions.csv", 4, "product_code", None, "product_code: a value is required"),
        ("transactions.csv", 5, "currency", "EURO", "currency: not an ISO 4217 currency code"),
        ("transactions.csv", 6, "txn_id", "T1", "duplicate txn_id: first given in row 1"),
        ("transactions.csv", 7, "txn_date", "2026-02-30",
         "txn_date: not a date in the format %Y-%m-%d; quantity: not a decimal number with a "
         "decimal point and at most 6 decimal places"),
    ]
    info = result.file("transactions.csv")
    assert (info.rows, info.rejected) == (8, 6)


def test_broken_csv_rows_keep_their_neighbours(client_dir, drop_dir):
    raw = (b"customer_id,name,country,currency\n"
           b"C1,Alpha,DE,EUR\n"
           b"C2,Beta,DE\n"
           b"C3,\"Gamma\nand Sons\",DE,EUR\n"
           b"\n"
           b"C4,D\xfcsseldorf AG,DE,EUR\n"
           b"C5,Epsilon,DE,EUR\n")
    result = _ingest(client_dir(), drop_dir(customers__csv=raw))
    rows = result.tables["customers"].to_pylist()
    # A quoted newline is part of a value; the blank line is not a row.
    assert [(r["customer_id"], r["name"], r["__row"]) for r in rows] == [
        ("C1", "Alpha", 1), ("C3", "Gamma\nand Sons", 3), ("C5", "Epsilon", 5)]
    assert [(n, reason) for _f, n, _c, _v, reason in _rejects(result)] == [
        (2, "expected 4 fields, found 3"), (4, "not valid UTF-8 text")]


def test_missing_required_column_rejects_every_row_naming_it(client_dir, drop_dir):
    drop = drop_dir(customers__csv="customer_id,name,country\nC1,Alpha,DE\nC2,Beta,FR\n")
    result = _ingest(client_dir(), drop)
    assert result.tables["customers"].num_rows == 0
    assert [(n, reason) for _f, n, _c, _v, reason in _rejects(result)] == [
        (1, "missing required column currency"), (2, "missing required column currency")]
    with pytest.raises(DropRefused) as refused:
        check_reject_ratio(result, Decimal("0.5"))
    assert "2 of 2 rows rejected" in str(refused.value)


def test_header_only_file_is_a_valid_empty_table(client_dir, drop_dir):
    result = _ingest(client_dir(), drop_dir(disputes__csv="invoice_id,opened_on,status,reason\n"))
    assert result.tables["disputes"].num_rows == 0 and result.reject_table().num_rows == 0


MAPPING = """\
inputs:
  transactions:
    file: "Faktura*.csv"
    delimiter: ";"
    decimal_comma: true
    date_format: "%d.%m.%Y"
    rename: {Beleg: txn_id, Kunde: customer_id, Datum: txn_date, Artikel: product_code,
             Menge: quantity, Preis: unit_price, Waehrung: currency}
    computed:
      tax_category: 'if product_code matches "^BK-" then "reduced" else "standard"'
      description: 'concat(product_code, " billed ", days_between(txn_date, as_of), " days late")'
"""


def test_client_mapping_renames_parses_and_computes(client_dir, drop_dir):
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, Fakturadaten__csv=(
        "Beleg;Kunde;Datum;Artikel;Menge;Preis;Waehrung\n"
        "V1;C1;27.02.2026;BK-1;1.250,5;1.234,56;EUR\n"
        "V2;C1;2026-02-27;TL-9;1;2;EUR\n"
        "V3;C1;28.02.2026;TL-9;3;0,35;EUR\n"))
    result = _ingest(client_dir(MAPPING), drop)
    rows = result.tables["transactions"].to_pylist()
    assert [(r["txn_id"], r["quantity"], r["unit_price"], r["tax_category"]) for r in rows] == [
        ("V1", Decimal("1250.5"), Decimal("1234.56"), "reduced"),
        ("V3", Decimal("3"), Decimal("0.35"), "standard")]
    assert rows[0]["txn_date"] == dt.date(2026, 2, 27)
    assert rows[0]["description"] == "BK-1 billed 3 days late"
    assert _rejects(result) == [("Fakturadaten.csv", 2, "txn_date", "2026-02-27",
                                 "txn_date: not a date in the format %d.%m.%Y")]


def test_json_lines_keep_exact_numbers_and_reject_bad_lines(client_dir, drop_dir):
    text = ('{"payment_id": "P1", "received_on": "2026-03-01", "amount": 0.1, "currency": "EUR"}\n'
            '\n'
            '{"payment_id": "P2", "received_on": "2026-03-01", "amount": 1199.60, '
            '"currency": "EUR", "reference": "INV 7"}\n'
            '{"payment_id": "P3", oops}\n'
            '["not", "an", "object"]\n'
            '{"payment_id": "P4", "received_on": "2026-03-01", "amount": -5, "currency": "EUR"}\n')
    result = _ingest(client_dir(), drop_dir(payments__jsonl=text))
    rows = result.tables["payments"].to_pylist()
    assert [(r["payment_id"], r["amount"], r["__row"]) for r in rows] == [
        ("P1", Decimal("0.1"), 1), ("P2", Decimal("1199.6"), 2)]
    reasons = [(n, reason) for _f, n, _c, _v, reason in _rejects(result)]
    assert reasons[0][0] == 3 and reasons[0][1].startswith("not valid JSON")
    assert reasons[1:] == [(4, "a JSON Lines record must be an object"),
                           (5, "amount: must be greater than zero")]


def test_parquet_typed_and_text_columns(client_dir, drop_dir):
    typed = pa.table({
        "rate_date": pa.array([dt.date(2026, 3, 1), dt.date(2026, 3, 2)], pa.date32()),
        "from_currency": ["EUR", "EUR"], "to_currency": ["USD", "XYZ"],
        "rate": pa.array([Decimal("1.08125"), Decimal("1.1")], pa.decimal128(10, 5)),
    })
    buffer = io.BytesIO()
    pq.write_table(typed, buffer)
    result = _ingest(client_dir(), drop_dir(fx_rates__parquet=buffer.getvalue()))
    rows = result.tables["fx_rates"].to_pylist()
    assert [(r["rate_date"], r["rate"]) for r in rows] == [(dt.date(2026, 3, 1),
                                                            Decimal("1.08125"))]
    assert _rejects(result) == [("fx_rates.parquet", 2, "to_currency", "XYZ",
                                 "to_currency: not an ISO 4217 currency code")]


def test_parquet_typed_values_are_read_as_they_are_not_as_text(client_dir, drop_dir):
    """Typed decimals, dates and integers need no text format: the client's decimal comma
    and date format are for text. A rejected typed value shows as its text."""
    mapping = 'inputs:\n  payments:\n    decimal_comma: true\n    date_format: "%d.%m.%Y"\n'
    payments = pa.table({
        "payment_id": pa.array([101, 102, 103, 104, 105], pa.int64()),  # a text column
        "received_on": pa.array([dt.date(2026, 3, 1), dt.date(2026, 3, 1),
                                 dt.date(1850, 1, 1), None, dt.date(2026, 3, 1)], pa.date32()),
        "amount": pa.array([Decimal("1.234"), Decimal("-0.5"), Decimal("7"), Decimal("2"),
                            Decimal("1234.5")], pa.decimal128(12, 3)),
        "currency": ["EUR"] * 5})
    rates = pa.table({  # more places than the canonical DECIMAL(18,8), fine while zeros
        "rate_date": pa.array([dt.date(2026, 3, 1)] * 2, pa.date32()),
        "from_currency": ["EUR", "EUR"], "to_currency": ["USD", "CHF"],
        "rate": pa.array([Decimal("1.5"), Decimal("0.1234567891")], pa.decimal128(12, 10))})
    files = {}
    for name, table in (("payments__parquet", payments), ("fx_rates__parquet", rates)):
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        files[name] = buffer.getvalue()
    result = _ingest(client_dir(mapping), drop_dir(**files))
    assert result.tables["payments"].select(["payment_id", "received_on", "amount"]).to_pylist() \
        == [{"payment_id": "105", "received_on": dt.date(2026, 3, 1), "amount": Decimal("1234.5")}]
    assert result.tables["fx_rates"].column("rate").to_pylist() == [Decimal("1.5")]
    cents = ("amount: more decimal places than the currency has (an amount of money is a whole "
             "number of cents, or of the currency's minor unit)")
    assert _rejects(result) == [
        ("fx_rates.parquet", 2, "rate", "0.1234567891",
         "rate: not a decimal number with a decimal point and at most 8 decimal places"),
        ("payments.parquet", 1, "amount", "1.234", cents),
        ("payments.parquet", 2, "amount", "-0.500", "amount: must be greater than zero"),
        ("payments.parquet", 3, "received_on", "1850-01-01",
         "received_on: not a plausible date (a year between 1900 and 2199)"),
        ("payments.parquet", 4, "received_on", None, "received_on: a value is required")]


def _parquet_file(folder, name, table):
    path = folder / name
    pq.write_table(table, path)
    return path


def test_parquet_of_text_and_exact_columns_is_left_to_duckdb_to_read(client_dir, drop_dir,
                                                                     tmp_path):
    """A Parquet file of text and exact columns only is not read into Arrow: DuckDB reads
    it in the check itself, under the client's renames, with the file's row numbers. A
    file with a column DuckDB would read otherwise (a timestamp) is read whole, as before."""
    from engine.readers import read_parquet

    payments = pa.table({
        "check_no": ["P1", "P2", "P3"],
        "received_on": pa.array([dt.date(2026, 3, 1)] * 3, pa.date32()),
        "amount": pa.array([Decimal("5.00"), Decimal("-1.00"), Decimal("7.25")],
                           pa.decimal128(12, 2)),
        "currency": ["EUR", "EUR", "EUR"]})
    raw = read_parquet(_parquet_file(tmp_path, "payments.parquet", payments))
    assert raw.scan is not None and raw.table.num_rows == 0 and raw.rows == 3
    stamped = payments.append_column("sent_at", pa.array(
        [dt.datetime(2026, 3, 1, 12, 0)] * 3, pa.timestamp("s")))
    whole = read_parquet(_parquet_file(tmp_path, "stamped.parquet", stamped))
    assert whole.scan is None and whole.table.num_rows == 3

    buffer = io.BytesIO()
    pq.write_table(payments, buffer)
    drop = drop_dir(payments__parquet=buffer.getvalue())
    result = _ingest(client_dir("inputs:\n  payments:\n    rename:\n      check_no: payment_id\n"),
                     drop)
    assert [(r["payment_id"], r["amount"], r["__row"]) for r in
            result.tables["payments"].to_pylist()] == [("P1", Decimal("5.00"), 1),
                                                       ("P3", Decimal("7.25"), 3)]
    assert _rejects(result) == [("payments.parquet", 2, "amount", "-1.00",
                                 "amount: must be greater than zero")]
    assert (result.files[0].rows, result.files[0].rejected) == (3, 1)


def test_a_scanned_parquet_file_missing_a_required_column_rejects_every_row(client_dir,
                                                                           drop_dir):
    payments = pa.table({"payment_id": ["P1", "P2"], "currency": ["EUR", "EUR"],
                         "received_on": pa.array([dt.date(2026, 3, 1)] * 2, pa.date32())})
    buffer = io.BytesIO()
    pq.write_table(payments, buffer)
    result = _ingest(client_dir(), drop_dir(payments__parquet=buffer.getvalue()))
    assert result.tables["payments"].num_rows == 0
    assert [(f, n, c, reason) for f, n, c, _v, reason in _rejects(result)] == [
        ("payments.parquet", n, "amount", "missing required column amount") for n in (1, 2)]
    assert (result.files[0].rows, result.files[0].rejected) == (2, 2)


def test_a_parquet_file_with_a_damaged_page_rejects_every_row_for_it(client_dir, drop_dir):
    """Its footer reads (so it is scanned), its data does not: DuckDB's failure sends it to
    the careful read, which rejects every row with the reason, as for any unreadable file."""
    payments = pa.table({"payment_id": [f"P{i}" for i in range(50)], "currency": ["EUR"] * 50,
                         "received_on": pa.array([dt.date(2026, 3, 1)] * 50, pa.date32()),
                         "amount": pa.array([Decimal("5.00")] * 50, pa.decimal128(12, 2))})
    buffer = io.BytesIO()
    pq.write_table(payments, buffer, compression="none")
    damaged = bytearray(buffer.getvalue())
    damaged[20:24] = b"\xff" * 4  # inside the first column's data page
    result = _ingest(client_dir(), drop_dir(payments__parquet=bytes(damaged)))
    rejects = _rejects(result)
    assert [n for _f, n, _c, _v, _r in rejects] == list(range(1, 51))
    assert all(r.startswith("not a readable Parquet file") for *_x, r in rejects)
    assert result.tables["payments"].num_rows == 0
    assert (result.files[0].rows, result.files[0].rejected) == (50, 50)


def _parquet_bytes(table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def _payments(n: int, **extra) -> pa.Table:
    return pa.table({"payment_id": [f"P{i}" for i in range(1, n + 1)], "currency": ["EUR"] * n,
                     "received_on": pa.array([dt.date(2026, 3, 1)] * n, pa.date32()),
                     "amount": pa.array([Decimal("5.00") + i for i in range(n)],
                                        pa.decimal128(12, 2)), **extra})


def test_a_scanned_parquet_file_takes_no_value_from_its_folder_names(client_dir, drop_dir):
    """A drop kept under a folder such as `currency=USD/`: DuckDB would read that as a
    column of the file (hive partitioning) and put USD in every row."""
    drop = drop_dir("currency=USD/amount=1/2026-03-02",
                    payments__parquet=_parquet_bytes(_payments(2)))
    result = _ingest(client_dir(), drop)
    assert [(r["currency"], r["amount"]) for r in result.tables["payments"].to_pylist()] == [
        ("EUR", Decimal("5.00")), ("EUR", Decimal("6.00"))]


def test_parquet_text_that_is_not_utf8_rejects_its_row_in_a_column_nothing_reads(
        client_dir, drop_dir):
    """The check reads only the table's columns, so DuckDB would never see the bad text of
    an extra column: such a file is read the careful way, and the row is rejected."""
    memo = pa.array([b"ok", b"caf\xe9", b"x"], pa.binary()).view(pa.string())
    result = _ingest(client_dir(), drop_dir(
        payments__parquet=_parquet_bytes(_payments(3, memo=memo))))
    assert [r["payment_id"] for r in result.tables["payments"].to_pylist()] == ["P1", "P3"]
    assert [(n, reason) for _f, n, _c, _v, reason in _rejects(result)] == [
        (2, "memo: not valid UTF-8 text")]


def test_a_parquet_value_is_checked_whatever_the_file_says_of_its_range(client_dir, drop_dir):
    """The footer's statistics say every amount is positive, but a damaged byte made row
    34's negative: DuckDB must check the value, not fold the check from the statistics."""
    data = bytearray(_parquet_bytes(_payments(50), compression="none"))
    at = data.find((3800).to_bytes(6, "big", signed=True))  # row 34's amount, 38.00
    data[at] ^= 0x80  # its sign bit
    result = _ingest(client_dir(), drop_dir(payments__parquet=bytes(data)))
    rejects = _rejects(result)
    assert [(n, c) for _f, n, c, _v, _r in rejects] == [(34, "amount")]
    assert rejects[0][4] == "amount: must be greater than zero"
    assert result.tables["payments"].num_rows == 49


def test_tables_are_checked_at_once_each_with_the_statistics_its_read_needs(
        client_dir, drop_dir, monkeypatch):
    """Tables are checked on threads of their own. A scanned Parquet file is checked with
    DuckDB's statistics off (the damaged row 34 is still rejected), a CSV file with them
    on (they keep its sort small); the setting is the database's, and is reset after."""
    import threading

    execute, seen = DuckDBExecutor.execute, []

    def spy(self, statement):
        sql = self.render(statement)
        if sql.startswith("CREATE OR REPLACE TABLE checked_"):
            setting = self.query("SELECT current_setting('disabled_optimizers')")[0][0]
            seen.append((sql.split()[4], setting, threading.current_thread().name))
        return execute(self, statement)

    monkeypatch.setattr(DuckDBExecutor, "execute", spy)
    data = bytearray(_parquet_bytes(_payments(50), compression="none"))
    data[data.find((3800).to_bytes(6, "big", signed=True))] ^= 0x80  # row 34: negative
    executor = DuckDBExecutor()
    try:
        result = ingest(drop_dir(customers__csv=CUSTOMERS_CSV, transactions__csv=TRANSACTIONS_CSV,
                                 payments__parquet=bytes(data)),
                        load_ruleset(client_dir()), executor, dt.date(2026, 3, 2))
        assert executor.query("SELECT current_setting('disabled_optimizers')") == [("",)]
        assert [r["txn_id"] for r in result.tables["transactions"].to_pylist()] == ["T1", "T7"]
    finally:
        executor.close()
    assert sorted((table, setting) for table, setting, _ in seen) == [
        ("checked_customers", ""), ("checked_payments", "statistics_propagation"),
        ("checked_transactions", "")]
    assert all(thread.startswith("ingest") for _, _, thread in seen)
    assert [(n, c) for f, n, c, _v, _r in _rejects(result) if f == "payments.parquet"] == [
        (34, "amount")]
    assert [f.path.name for f in result.files] == [
        "customers.csv", "transactions.csv", "payments.parquet"]  # in table order


@pytest.mark.parametrize("refusing", ["customers", "payments"])
def test_a_refused_table_stops_the_checks_running_beside_it(client_dir, drop_dir, monkeypatch,
                                                           refusing):
    """Tables are checked at once: when one refuses the drop (the first in table order or
    a later one), a check still running on another connection is interrupted, not waited
    for, and the refusal is what is raised."""
    import threading

    import duckdb

    from engine import ingest as ingest_module

    running, seen = threading.Event(), []

    def ingest_file(file, mapping, ruleset, cursor, part, as_of, optimizers):
        if file.table == refusing:
            running.wait(10)
            raise DropRefused([])
        running.set()
        try:  # a check that would run for a while (seconds)
            cursor.query("SELECT sum(a.range * b.range) FROM range(100000) AS a, "
                         "range(100000) AS b")
        except duckdb.InterruptException as exc:
            seen.append(exc)
            raise

    monkeypatch.setattr(ingest_module, "_ingest_file", ingest_file)
    with pytest.raises(DropRefused):
        _ingest(client_dir(), drop_dir(customers__csv=CUSTOMERS_CSV,
                                       payments__parquet=_parquet_bytes(_payments(2))))
    assert len(seen) == 1


def test_an_interrupted_check_with_nothing_else_failing_is_what_is_raised(
        client_dir, drop_dir, monkeypatch):
    """An interruption from outside (DuckDB's own, not the ingest's stopping of the other
    tables) is the failure raised when no table failed of itself."""
    import duckdb

    from engine import ingest as ingest_module

    def ingest_file(file, mapping, ruleset, cursor, part, as_of, optimizers):
        if file.table == "payments":
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(ingest_module, "_ingest_file", ingest_file)
    with pytest.raises(duckdb.InterruptException, match="Interrupted"):
        _ingest(client_dir(), drop_dir(customers__csv=CUSTOMERS_CSV,
                                       payments__parquet=_parquet_bytes(_payments(2))))


def test_checks_of_the_other_kind_wait_for_those_running():
    """Optimizers: a check of rows read into Arrow waits while a scanned file's runs, and
    DuckDB's setting is switched only between them."""
    import threading

    from engine.checks import Optimizers

    class Recorder:
        def __init__(self):
            self.statements = []

        def execute(self, statement):
            self.statements.append(statement)

    optimizers, db, order = Optimizers(), Recorder(), []
    scanning, release = threading.Event(), threading.Event()

    def scan():
        with optimizers.check(db, scanned=True):
            order.append("scan starts")
            scanning.set()
            release.wait(10)
            order.append("scan ends")

    def careful():
        scanning.wait(10)
        with optimizers.check(db, scanned=False):
            order.append("careful runs")

    threads = [threading.Thread(target=scan), threading.Thread(target=careful)]
    for t in threads:
        t.start()
    scanning.wait(10)
    threads[1].join(0.2)  # it waits: the scan is running
    assert order == ["scan starts"] and threads[1].is_alive()
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["scan starts", "scan ends", "careful runs"]
    optimizers.reset(db)
    assert db.statements == ["SET disabled_optimizers = 'statistics_propagation'",
                             "RESET disabled_optimizers"]


def test_duckdb_out_of_memory_on_a_scanned_file_fails_the_ingest(client_dir, drop_dir,
                                                                  monkeypatch):
    """Past the memory limit the careful read would only hold more, outside it: the error
    stands, the file is not read again into Arrow."""
    import duckdb

    from engine import readers

    execute, careful = DuckDBExecutor.execute, []

    def short_of_memory(self, statement):
        if "TABLE checked_payments AS" in self.render(statement):
            raise duckdb.OutOfMemoryException("Out of Memory Error: test")
        return execute(self, statement)

    whole = readers._read_parquet_whole
    monkeypatch.setattr(DuckDBExecutor, "execute", short_of_memory)
    monkeypatch.setattr(readers, "_read_parquet_whole",
                        lambda path: careful.append(path) or whole(path))
    with pytest.raises(duckdb.OutOfMemoryException):
        _ingest(client_dir(), drop_dir(payments__parquet=_parquet_bytes(_payments(2))))
    assert careful == []


def test_parquet_dates_written_as_whole_numbers_read_with_the_date_format(client_dir, drop_dir):
    """An ERP that stores 1 March 2026 as the integer 20260301: the client's date_format
    says how to read it. Without one, the number is not an ISO date and is rejected."""
    payments = pa.table({
        "payment_id": ["P1", "P2", "P3"],
        "received_on": pa.array([20260301, 20261341, None], pa.int64()),
        "amount": pa.array([Decimal("5.00")] * 3, pa.decimal128(12, 2)),
        "currency": ["EUR"] * 3})
    buffer = io.BytesIO()
    pq.write_table(payments, buffer)
    drop = drop_dir(payments__parquet=buffer.getvalue())
    result = _ingest(client_dir('inputs:\n  payments:\n    date_format: "%Y%m%d"\n'), drop)
    assert result.tables["payments"].select(["payment_id", "received_on"]).to_pylist() == [
        {"payment_id": "P1", "received_on": dt.date(2026, 3, 1)}]
    assert _rejects(result) == [
        ("payments.parquet", 2, "received_on", "20261341",
         "received_on: not a date in the format %Y%m%d"),
        ("payments.parquet", 3, "received_on", None, "received_on: a value is required")]
    iso = _ingest(client_dir(), drop)
    assert iso.tables["payments"].num_rows == 0
    assert _rejects(iso)[0][2:] == ("received_on", "20260301",
                                    "received_on: not a date in the format %Y-%m-%d")


def test_table_given_in_two_formats_is_refused(client_dir, drop_dir):
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, customers__jsonl="")
    with pytest.raises(DropRefused, match="customers is given twice"):
        _ingest(client_dir(), drop)


def test_decimal_comma_takes_dots_only_as_thousands(client_dir, drop_dir):
    """1.5 or 12.50 in a decimal-comma file is not 15 or 1250: it is rejected."""
    mapping = 'inputs:\n  payments:\n    decimal_comma: true\n'
    rows = ["payment_id,received_on,amount,currency"] + [
        f'P{i},2026-03-01,"{v}",EUR' for i, v in enumerate(
            ["1.234,56", "1.234.567,8", "1.5", "12.50", "1.2.3", "1234,5", "12,345.6", "0,35"],
            1)]
    result = _ingest(client_dir(mapping), drop_dir(payments__csv="\n".join(rows) + "\n"))
    amounts = {r["payment_id"]: r["amount"] for r in result.tables["payments"].to_pylist()}
    assert amounts == {"P1": Decimal("1234.56"), "P2": Decimal("1234567.8"),
                       "P6": Decimal("1234.5"), "P8": Decimal("0.35")}
    assert [(n, c, v) for _f, n, c, v, _r in _rejects(result)] == [
        (3, "amount", "1.5"), (4, "amount", "12.50"), (5, "amount", "1.2.3"),
        (7, "amount", "12,345.6")]


def test_an_unclosed_quote_does_not_swallow_the_rows_after_it(client_dir, drop_dir):
    """10,000 customers, row 1001 opens a quote it never closes: 9,999 are kept."""
    rows = ["customer_id,name,country,currency"] + [
        f"C{i},Name {i},DE,EUR" for i in range(1, 10001)]
    rows[1001] = 'C1001,"Broken GmbH,DE,EUR'
    result = _ingest(client_dir(), drop_dir(customers__csv="\n".join(rows) + "\n"))
    assert result.tables["customers"].num_rows == 9999
    assert [(n, v, r) for _f, n, _c, v, r in _rejects(result)] == [
        (1001, 'C1001,"Broken GmbH,DE,EUR', "not valid CSV: unexpected end of data")]
    assert result.tables["customers"].column("__row").to_pylist()[1000] == 1002


def test_an_id_in_two_files_of_one_table_is_rejected_the_second_time(client_dir, drop_dir,
                                                                     tmp_path):
    mapping = 'inputs:\n  payments:\n    file: "pay*.csv"\n'
    head = "payment_id,received_on,amount,currency\n"
    drop = drop_dir(pay_a__csv=head + "P1,2026-03-01,10.00,EUR\nP2,2026-03-01,5.00,EUR\n",
                    pay_b__csv=head + "P3,2026-03-01,7.00,EUR\nP1,2026-03-01,10.00,EUR\n")
    executor = DuckDBExecutor()
    try:
        executor.attach(tmp_path / "state.duckdb")
        StateStore(executor, "testco").migrate()
        result = ingest(drop, load_ruleset(client_dir(mapping)), executor, dt.date(2026, 3, 2))
        check_references(result, executor, first_night=True)
        accepted = result.tables["payments"].column("payment_id").to_pylist()
    finally:
        executor.close()
    assert sorted(accepted) == ["P1", "P2", "P3"]
    assert _rejects(result) == [("pay_b.csv", 2, "payment_id", "P1",
                                 "duplicate payment_id: first given in pay_a.csv row 1")]
    assert result.file("pay_b.csv").rejected == 1


def test_dates_must_be_plausible_and_whole(client_dir, drop_dir):
    mapping = 'inputs:\n  payments:\n    date_format: "%d.%m.%Y"\n'
    rows = "payment_id,received_on,amount,currency\nP1,01.03.26,5.00,EUR\nP2,01.03.2026,5,EUR\n"
    result = _ingest(client_dir(mapping), drop_dir(payments__csv=rows))
    assert result.tables["payments"].column("payment_id").to_pylist() == ["P2"]
    assert _rejects(result)[0][1:4] == (1, "received_on", "01.03.26")


def test_json_lines_refuse_lists_objects_duplicate_keys_and_keep_a_bom(client_dir, drop_dir):
    text = ('\ufeff{"payment_id": "P1", "received_on": "2026-03-01", "amount": "5", '
            '"currency": "EUR"}\n'
            '{"payment_id": ["P2"], "received_on": "2026-03-01", "amount": "5", '
            '"currency": "EUR"}\n'
            '{"payment_id": "P3", "received_on": "2026-03-01", "amount": "5.00", "amount": "500",'
            ' "currency": "EUR"}\n')
    result = _ingest(client_dir(), drop_dir(payments__jsonl=text))
    assert result.tables["payments"].column("payment_id").to_pylist() == ["P1"]
    assert [(n, r) for _f, n, _c, _v, r in _rejects(result)] == [
        (2, "payment_id holds a list or object; values must be plain"),
        (3, "the key 'amount' is given twice")]


def test_parquet_float_money_is_refused_and_midnight_timestamps_are_dates(client_dir, drop_dir):
    floats = pa.table({"payment_id": ["P1"], "received_on": ["2026-03-01"],
                       "amount": pa.array([19.99], pa.float64()), "currency": ["EUR"]})
    stamps = pa.table({
        "rate_date": pa.array([dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 1, 12)],
                              pa.timestamp("us")),
        "from_currency": ["EUR", "EUR"], "to_currency": ["USD", "CHF"],
        "rate": pa.array([Decimal("1.08"), Decimal("0.94")], pa.decimal128(6, 4))})
    files = {}
    for name, table in (("payments__parquet", floats), ("fx_rates__parquet", stamps)):
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        files[name] = buffer.getvalue()
    result = _ingest(client_dir(), drop_dir(**files))
    assert result.file("payments.parquet").problem == (
        "column amount is binary floating point (double); amounts must be decimal or text")
    assert [r["rate_date"] for r in result.tables["fx_rates"].to_pylist()] == [
        dt.date(2026, 3, 1)]
    assert _rejects(result)[0][:4] == ("fx_rates.parquet", 2, "rate_date", "2026-03-01T12:00:00")


def test_unknown_columns_and_unmatched_renames_are_warnings(client_dir, drop_dir):
    mapping = 'inputs:\n  customers:\n    rename: {Kundenr: customer_id, Land: country}\n'
    rows = "Kundennr,name,Land,currency,tax_exmpt\nC1,Alpha,DE,EUR,true\n"
    result = _ingest(client_dir(mapping), drop_dir(customers__csv=rows))
    messages = [p.message for p in result.problems]
    assert messages == [
        "client.yaml renames Kundenr to customer_id, but customers.csv has no column Kundenr "
        "(did you mean Kundennr?)",
        "customers.csv has a column Kundennr, which is not a column of customers; it is not read",
        "customers.csv has a column tax_exmpt, which is not a column of customers; it is not "
        "read (did you mean tax_exempt?)"]
    assert result.file("customers.csv").problem == "missing required column customer_id"


def test_a_one_column_header_suggests_the_delimiter(client_dir, drop_dir):
    rows = "customer_id;name;country;currency\nC1;Alpha;DE;EUR\n"
    result = _ingest(client_dir(), drop_dir(customers__csv=rows))
    assert result.file("customers.csv").problem.endswith(
        "(the header is one column: is the delimiter ';'? set it under inputs:)")


def test_a_line_too_large_for_the_books_is_rejected_not_a_crash(client_dir, drop_dir):
    rows = ("txn_id,customer_id,txn_date,product_code,quantity,unit_price,currency\n"
            "T1,C1,2026-03-01,P,50000,4000000000,EUR\nT2,C1,2026-03-01,P,2,3.5,EUR\n")
    result = _ingest(client_dir(), drop_dir(customers__csv=CUSTOMERS_CSV, transactions__csv=rows))
    assert result.tables["transactions"].column("txn_id").to_pylist() == ["T2"]
    assert _rejects(result)[0][1:5] == (
        1, "unit_price", "4000000000",
        "unit_price: quantity x unit_price must stay below 1,000,000,000,000")


def test_accepted_rows_are_held_by_duckdb_under_its_memory_limit(client_dir, drop_dir, tmp_path):
    """The accepted rows stay in DuckDB, not in Arrow beside it: a drop bigger than
    --memory-limit is ingested whole, DuckDB spilling what passes the limit."""
    rows = ["customer_id,name,country,currency,email"] + [
        f"C{i:07d},Customer number {i} of a long list,DE,EUR,billing{i}@example.com"
        for i in range(400_000)]
    drop = drop_dir(customers__csv="\n".join(rows) + "\n")
    spill = tmp_path / "spill"
    executor = DuckDBExecutor(memory_limit="48MB", spill=spill)
    try:
        result = ingest(drop, load_ruleset(client_dir()), executor, dt.date(2026, 3, 2))
        assert result.tables.count("customers") == 400_000
        assert executor.query("SELECT count(*), min(__row), max(__row) FROM drop_customers"
                              ) == [(400_000, 1, 400_000)]
        assert any(spill.iterdir())  # past the limit: written out, not held in memory
    finally:
        executor.close()


def test_opening_items_after_the_first_night_are_all_rejected(client_dir, drop_dir, tmp_path):
    """Opening items are taken on a client's first night only: sent later, every row is
    moved to the rejects with the reason, and none is left for the subledger to post."""
    opening = ("invoice_id,customer_id,invoice_date,due_date,currency,amount_open\n"
               "OLD-1,C1,2026-01-08,2026-02-07,EUR,100.00\n"
               "OLD-2,C2,2026-01-09,2026-02-08,EUR,50.00\n")
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, opening_items__csv=opening)
    executor = DuckDBExecutor()
    try:
        executor.attach(tmp_path / "state.duckdb")
        StateStore(executor, "testco").migrate()
        result = ingest(drop, load_ruleset(client_dir()), executor, dt.date(2026, 3, 2))
        check_references(result, executor, first_night=False)
        left = result.tables.count("opening_items")
        customers = result.tables.count("customers")
    finally:
        executor.close()
    assert (left, customers) == (0, 3)
    reason = "opening_items are accepted on a client's first night only"
    assert _rejects(result) == [("opening_items.csv", 1, None, None, reason),
                                ("opening_items.csv", 2, None, None, reason)]
    assert result.file("opening_items.csv").rejected == 2
