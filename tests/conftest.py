"""Shared fixtures: a minimal client folder to write rules into, and run helpers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CLIENT_YAML = """\
kind: client
version: 1
client:
  id: testco
  name: Test Co
  base_currency: EUR
  country: DE
invoice_numbering:
  invoice: "T-{year}-{seq:04}"
  credit_note: "TC-{year}-{seq:04}"
sets:
  EU: [DE, AT, FR, "NO"]
accounts:
  ar_control: "1400"
  cash: "1200"
  revenue: "8400"
  tax_payable: "1776"
  write_off: "2400"
  unapplied_cash: "1590"
  dunning_fees: "2700"
  interest_income: "2650"
max_reject_ratio: 0.5
"""


# One tax rule for every line (19%), for tests about what comes after invoicing.
STANDARD_TAX = """\
kind: tax
version: 1
hit_policy: first
rounding_level: line
rules:
  - {id: standard, when: 'true', code: VAT19, rate: 19%}
"""

# CLIENT_YAML's accounts with a discount account, for clients with early-payment terms.
ACCOUNTS_WITH_DISCOUNT = CLIENT_YAML[CLIENT_YAML.index("accounts:"):CLIENT_YAML.index(
    "max_reject_ratio")] + '  discount: "8736"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def replace_accounts(folder: Path, accounts_yaml: str) -> None:
    """Swap the `accounts:` block of a test client's client.yaml for `accounts_yaml`."""
    path = folder / "client.yaml"
    text = path.read_text()
    start, end = text.index("accounts:"), text.index("max_reject_ratio")
    path.write_text(text[:start] + textwrap.dedent(accounts_yaml) + text[end:])


@pytest.fixture
def client_dir(tmp_path: Path):
    """A function (extra client.yaml text, other files) -> a rules folder."""
    def make(extra: str = "", **files: str) -> Path:
        folder = tmp_path / "rules" / "testco"
        write(folder / "client.yaml", CLIENT_YAML + textwrap.dedent(extra))
        for name, text in files.items():
            write(folder / name.replace("_yaml", ".yaml"), text)
        return folder
    return make


@pytest.fixture
def drop_dir(tmp_path: Path):
    """A function (folder name, {file name: text}) -> a drop folder."""
    def make(name: str = "2026-03-02", **files: str | bytes) -> Path:
        folder = tmp_path / "drops" / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            path = folder / file_name.replace("__", ".")
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content), encoding="utf-8")
        return folder
    return make


CUSTOMERS_CSV = """\
customer_id,name,country,region,currency,payment_terms_days,vat_id,tax_exempt
C1,Alpha GmbH,DE,,EUR,30,DE123456789,false
C2,Beta SARL,FR,,EUR,,FR12345678901,
C3,Gamma AS,NO,,EUR,60,,no
"""
