"""Property: for random lines and tax tables, invoices add up and journals balance."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario import Scenario

from engine.money import minor_unit

RATES = ["0%", "5%", "7%", "7.7%", "19%", "20%", "21%", "25.5%"]
CURRENCIES = {"C1": "EUR", "C2": "JPY", "C3": "BHD"}

amounts = st.decimals(min_value=Decimal("-5"), max_value=Decimal("40"), places=3,
                      allow_nan=False, allow_infinity=False).filter(lambda q: q != 0)
prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("900"), places=4,
                     allow_nan=False, allow_infinity=False)
lines = st.lists(st.tuples(st.sampled_from(sorted(CURRENCIES)), amounts, prices,
                           st.sampled_from(["standard", "reduced", "zero"]),
                           st.sampled_from(["", "PO-1", "PO-2"])), min_size=1, max_size=14)


def _tax_yaml(level: str, included: bool, rates: list[str], mode: str) -> str:
    return f"""\
kind: tax
version: 1
hit_policy: first
rounding_level: {level}
prices_include_tax: {str(included).lower()}
rules:
  - {{id: reduced, when: 'tax_category == "reduced"', code: RED, rate: "{rates[0]}"}}
  - {{id: zero, when: 'tax_category == "zero"', code: ZERO, rate: 0%}}
  - {{id: standard, when: 'true', code: STD, rate: "{rates[1]}"}}
"""


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines, st.sampled_from(["line", "invoice"]), st.booleans(),
       st.lists(st.sampled_from(RATES), min_size=2, max_size=2),
       st.sampled_from(["half_up", "half_even"]))
def test_invoices_add_up_and_journals_balance(rows, level, included, rates, mode):
    with tempfile.TemporaryDirectory() as tmp:
        s = Scenario(Path(tmp), _tax_yaml(level, included, rates, mode),
                     client_extra=f"rounding: {mode}\n")
        customers = [{"customer_id": c, "name": c, "country": "DE", "currency": cur}
                     for c, cur in CURRENCIES.items()]
        drop = [{"txn_id": f"T{i}", "customer_id": c, "txn_date": "2026-03-01",
                 "product_code": "P", "quantity": str(q), "unit_price": str(p),
                 "currency": CURRENCIES[c], "tax_category": cat, "po_number": po}
                for i, (c, q, p, cat, po) in enumerate(rows)]
        assert s.night("2026-03-02", customers=customers, transactions=drop) == 0
        invoices = {r["invoice_id"]: r for r in s.rows("invoices")}
        lines_out = s.rows("invoice_lines")
        entries = s.rows("journal_entries")

    assert len(lines_out) == len(rows)  # every line is invoiced: the last rule catches all
    sums = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in lines_out:
        places = minor_unit(invoices[line["invoice_id"]]["currency"])
        for amount in (line["net_amount"], line["tax_amount"]):
            assert amount == amount.quantize(Decimal(1).scaleb(-places))
        sums[line["invoice_id"]][0] += line["net_amount"]
        sums[line["invoice_id"]][1] += line["tax_amount"]
        if included:  # net + tax is the line's gross, quantity x price rounded
            gross = Decimal(line["quantity"]) * Decimal(line["unit_price"])
            assert abs(line["net_amount"] + line["tax_amount"] - gross) <= Decimal(
                1).scaleb(-places) / 2
    for invoice_id, invoice in invoices.items():
        assert invoice["gross_amount"] == invoice["net_amount"] + invoice["tax_amount"]
        assert sums[invoice_id] == [invoice["net_amount"], invoice["tax_amount"]]
        assert (invoice["document_type"] == "credit_note") == (invoice["gross_amount"] < 0)
    balance = defaultdict(Decimal)
    for entry in entries:
        assert entry["debit"] >= 0 and entry["credit"] >= 0
        balance[(entry["entry_id"], entry["currency"])] += entry["debit"] - entry["credit"]
    assert all(v == 0 for v in balance.values())
    numbers = defaultdict(list)  # each entry's lines numbered 1, 2, ... and none empty
    for entry in entries:
        assert entry["debit"] + entry["credit"] > 0
        numbers[entry["entry_id"]].append(entry["line_no"])
    assert all(n == list(range(1, len(n) + 1)) for n in numbers.values())
