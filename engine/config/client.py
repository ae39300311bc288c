"""client.yaml as typed records, each knob with the place it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.config.yamlpos import Positions
from engine.dsl.scope import Constant
from engine.errors import SourceRef

DEFAULT_BUCKETS = (("current", 0), ("d1_30", 30), ("d31_60", 60), ("d61_90", 90),
                   ("over_90", None))


@dataclass(frozen=True)
class AccountRule:
    """`key` (a product code or tax code; '*' and '?' glob) books to `account`."""

    ref: SourceRef
    key: str
    account: str


@dataclass(frozen=True)
class Account:
    ref: SourceRef
    default: str
    by: tuple[AccountRule, ...] = ()  # in file order; the first that fits wins


@dataclass(frozen=True)
class Accounts:
    ref: SourceRef
    ar_control: Account
    cash: Account
    revenue: Account
    tax_payable: Account
    write_off: Account
    discount: Account | None
    unapplied_cash: Account
    dunning_fees: Account
    interest_income: Account


@dataclass(frozen=True)
class Computed:
    """A computed input column: `column` = DSL `text`, written at `ref`."""

    ref: SourceRef
    column: str
    text: str
    path: tuple


@dataclass(frozen=True)
class InputMapping:
    ref: SourceRef
    table: str
    file: str | None = None
    format: str | None = None
    delimiter: str = ","
    decimal_comma: bool = False
    date_format: str | None = None
    rename: tuple[tuple[str, str], ...] = ()
    computed: tuple[Computed, ...] = ()


@dataclass(frozen=True)
class Bucket:
    ref: SourceRef
    name: str
    max_days: int | None


@dataclass(frozen=True)
class ClientConfig:
    ref: SourceRef
    id: str
    name: str
    base_currency: str
    country: str
    net_days: int
    discount_percent: Decimal | None
    discount_days: int | None
    invoice_format: str
    credit_note_format: str
    rounding: str
    sets: dict[str, tuple[Any, ...]]
    accounts: Accounts
    inputs: dict[str, InputMapping]
    max_reject_ratio: Decimal
    aging_buckets: tuple[Bucket, ...]
    refs: dict[str, SourceRef] = field(default_factory=dict)

    def constants(self) -> dict[str, Constant]:
        """The `client.*` names of the DSL, inlined as literals when compiled."""
        return {
            "client.id": Constant("string", self.id),
            "client.name": Constant("string", self.name),
            "client.base_currency": Constant("string", self.base_currency),
            "client.country": Constant("string", self.country),
        }


def percent(value: Any) -> Decimal:
    """'2%' or 0.02 as the fraction Decimal('0.02')."""
    if isinstance(value, str) and value.endswith("%"):
        return Decimal(value[:-1]) / 100
    return Decimal(str(value))


def _account(value: Any, path: tuple, pos: Positions) -> Account:
    ref = pos.ref(path)
    if isinstance(value, dict):
        by = tuple(AccountRule(pos.key_ref(path + ("by", k)), str(k), str(v))
                   for k, v in (value.get("by") or {}).items())
        return Account(pos.ref(path + ("default",)), str(value["default"]), by)
    return Account(ref, str(value))


def _accounts(data: dict, pos: Positions) -> Accounts:
    names = ("ar_control", "cash", "revenue", "tax_payable", "write_off", "discount",
             "unapplied_cash", "dunning_fees", "interest_income")
    built = {n: _account(data[n], ("accounts", n), pos) if n in data else None for n in names}
    return Accounts(pos.ref(("accounts",)), **built)


def _input(table: str, data: dict, pos: Positions) -> InputMapping:
    path = ("inputs", table)
    computed = tuple(Computed(pos.ref(path + ("computed", col)), col, text,
                              path + ("computed", col))
                     for col, text in (data.get("computed") or {}).items())
    return InputMapping(
        pos.ref(path), table, data.get("file"), data.get("format"),
        data.get("delimiter", ","), bool(data.get("decimal_comma", False)),
        data.get("date_format"), tuple((data.get("rename") or {}).items()), computed)


def _buckets(data: list | None, pos: Positions) -> tuple[Bucket, ...]:
    if not data:
        ref = SourceRef(pos.file, 1, 1)
        return tuple(Bucket(ref, name, days) for name, days in DEFAULT_BUCKETS)
    return tuple(Bucket(pos.ref(("aging_buckets", i)), b["name"], b.get("max_days"))
                 for i, b in enumerate(data))


def build_client(data: dict, pos: Positions) -> ClientConfig:
    """Typed client config from a schema-valid client.yaml document."""
    client = data["client"]
    terms = data.get("payment_terms") or {}
    discount = terms.get("discount")
    numbering = data["invoice_numbering"]
    return ClientConfig(
        ref=pos.ref(("client",)),
        id=client["id"], name=client["name"], base_currency=client["base_currency"],
        country=client["country"],
        net_days=int(terms.get("net_days", 30)),
        discount_percent=percent(discount["percent"]) if discount else None,
        discount_days=int(discount["days"]) if discount else None,
        invoice_format=numbering["invoice"], credit_note_format=numbering["credit_note"],
        rounding=data.get("rounding", "half_up"),
        sets={k: tuple(v) for k, v in (data.get("sets") or {}).items()},
        accounts=_accounts(data["accounts"], pos),
        inputs={t: _input(t, m, pos) for t, m in (data.get("inputs") or {}).items()},
        max_reject_ratio=Decimal(str(data.get("max_reject_ratio", "0.05"))),
        aging_buckets=_buckets(data.get("aging_buckets"), pos),
        refs={key: pos.key_ref((key,)) for key in data},
    )
