"""Journal entries, balanced per entry and currency, each line naming its rule.

Invoices: Dr AR control (gross) / Cr revenue by the product's account (net) / Cr tax
payable by the tax code's account (tax). A credit note turns every side round. A
line whose amount is negative books on the other side, so debit and credit are
never negative.

Payments, one entry per payment and night (SPEC section 7): Dr cash (the amount);
per item Cr AR (applied + written off + discount), Dr write-off, Dr discount; Cr
unapplied cash (the rest). A credit note offset by the payment is Dr AR. Cash carried
from an earlier night and applied tonight: Dr unapplied cash (on the customer it was
booked to) / Cr AR; when that was nobody, its rest moves to the customer the match
found (Dr / Cr unapplied cash).
"""

from __future__ import annotations

from sqlglot import exp

from engine.config.client import Account
from engine.config.ruleset import RuleSet
from engine.stages.sql import glob_like, template

INVOICE_ENTRIES = """
WITH revenue AS (  -- the lines summed per invoice first: the heads join the sums
  SELECT invoice_no, account, rule_id, rule_ref, sum(net_amount) AS amount
  FROM (SELECT invoice_no, net_amount, :revenue_account AS account,
               :revenue_rule AS rule_id, :revenue_ref AS rule_ref FROM inv_lines_final)
  GROUP BY invoice_no, account, rule_id, rule_ref
  HAVING sum(net_amount) <> 0
), tax AS (
  SELECT invoice_no, tax_code, rule_id, rule_ref, sum(tax_amount) AS amount
  FROM inv_lines_final
  GROUP BY invoice_no, tax_code, rule_id, rule_ref
  HAVING sum(tax_amount) <> 0
), numbered AS (  -- revenue then tax lines, numbered per invoice while still narrow
  SELECT *, row_number() OVER (PARTITION BY invoice_no
                               ORDER BY part, account, rule_id, tax_code) AS n
  FROM (SELECT invoice_no, 2 AS part, account, -amount AS amount, rule_id, rule_ref,
               CAST(NULL AS VARCHAR) AS tax_code
        FROM revenue
        UNION ALL
        SELECT invoice_no, 3, :tax_account, -amount, rule_id, rule_ref, tax_code
        FROM tax AS t)
), sides AS (  -- the receivable first, when there is one
  SELECT invoice_id, document_type, customer_id, currency, 1 AS line_no,
         :ar_account AS account, gross_amount AS amount, :ar_rule AS rule_id,
         :ar_ref AS rule_ref, 'receivable ' || invoice_id AS memo
  FROM inv_heads
  WHERE gross_amount <> 0
  UNION ALL
  SELECT h.invoice_id, h.document_type, h.customer_id, h.currency,
         n.n + CASE WHEN h.gross_amount <> 0 THEN 1 ELSE 0 END, n.account, n.amount,
         n.rule_id, n.rule_ref,
         CASE WHEN n.part = 2 THEN 'revenue ' ELSE 'tax ' || n.tax_code || ' ' END
         || h.invoice_id
  FROM numbered AS n
  JOIN inv_heads AS h ON h.invoice_no = n.invoice_no
)
SELECT 'JE-' || invoice_id AS entry_id, CAST(line_no AS BIGINT) AS line_no,
       CAST(:as_of AS DATE) AS entry_date, account,
       CAST(greatest(amount, 0) AS DECIMAL(18,4)) AS debit,
       CAST(greatest(-amount, 0) AS DECIMAL(18,4)) AS credit,
       currency, customer_id, document_type, invoice_id AS document_id, memo, rule_id, rule_ref
FROM sides
ORDER BY entry_id, line_no
"""


CASH_ENTRIES = """
WITH r AS (
  SELECT a.*, p.origin, coalesce(p.customer_id, p.match_customer) AS payer,
         s.strategy_id, s.rule_ref AS strategy_ref, s.tolerance_ref
  FROM cash_apps AS a
  JOIN cash_pay AS p ON p.payment_id = a.payment_id
  LEFT JOIN cash_strategies AS s ON s.idx = a.strategy_idx
), carried AS (
  SELECT p.payment_id, p.currency, p.customer_id, p.match_customer, p.cash AS rest
  FROM cash_pay AS p
  WHERE p.origin = 'carried' AND p.payment_id IN (SELECT payment_id FROM cash_apps)
), sides AS (
  SELECT payment_id, currency, payer AS customer_id, 1 AS part, '' AS item,
         :cash_account AS account, sum(applied) AS amount, 'accounts.cash' AS rule_id,
         :cash_ref AS rule_ref, 'cash received ' || payment_id AS memo
  FROM r WHERE origin = 'drop' GROUP BY payment_id, currency, payer
  UNION ALL
  SELECT c.payment_id, c.currency, c.customer_id, 1, '', :unapplied_account, sum(a.applied),
         'accounts.unapplied_cash', :unapplied_ref, 'unapplied cash applied ' || c.payment_id
  FROM carried AS c JOIN cash_apps AS a ON a.payment_id = c.payment_id
  WHERE a.invoice_id IS NOT NULL
  GROUP BY c.payment_id, c.currency, c.customer_id
  UNION ALL
  SELECT payment_id, currency, customer_id, 2, invoice_id, :ar_account,
         -(applied + written_off + discount), strategy_id, strategy_ref,
         CASE WHEN applied < 0 THEN 'credit note offset ' ELSE 'paid ' END || invoice_id
  FROM r WHERE invoice_id IS NOT NULL
  UNION ALL
  SELECT payment_id, currency, customer_id, 3, invoice_id, :write_off_account, written_off,
         strategy_id, tolerance_ref, 'written off ' || invoice_id
  FROM r WHERE invoice_id IS NOT NULL
  UNION ALL
  SELECT payment_id, currency, customer_id, 4, invoice_id, :discount_account, discount,
         'payment_terms.discount', :discount_ref, 'discount taken ' || invoice_id
  FROM r WHERE invoice_id IS NOT NULL
  UNION ALL
  SELECT payment_id, currency, customer_id, 5, '', :unapplied_account, -applied,
         'accounts.unapplied_cash', :unapplied_ref, 'unapplied ' || payment_id
  FROM r WHERE invoice_id IS NULL AND origin = 'drop'
  UNION ALL
  -- cash of an unknown payer that tonight's match put on a customer: its rest moves
  SELECT payment_id, currency, NULL, 6, '', :unapplied_account, rest,
         'accounts.unapplied_cash', :unapplied_ref, 'unapplied ' || payment_id || ' identified'
  FROM carried WHERE customer_id IS NULL AND match_customer IS NOT NULL
  UNION ALL
  SELECT payment_id, currency, match_customer, 7, '', :unapplied_account, -rest,
         'accounts.unapplied_cash', :unapplied_ref,
         'unapplied ' || payment_id || ' of ' || match_customer
  FROM carried WHERE customer_id IS NULL AND match_customer IS NOT NULL
)
SELECT 'JE-PAY-' || payment_id || '-' || strftime(CAST(:as_of AS DATE), '%Y%m%d') AS entry_id,
       row_number() OVER (PARTITION BY payment_id ORDER BY part, item) AS line_no,
       CAST(:as_of AS DATE) AS entry_date, account,
       CAST(greatest(amount, 0) AS DECIMAL(18,4)) AS debit,
       CAST(greatest(-amount, 0) AS DECIMAL(18,4)) AS credit,
       currency, customer_id, 'payment' AS document_type, payment_id AS document_id, memo,
       rule_id, rule_ref
FROM sides
WHERE amount <> 0
ORDER BY entry_id, line_no
"""


def _account_case(account: Account, key: exp.Expression, what: str,
                  ) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
    """(account, rule_id, rule_ref) by the first `by` glob that fits `key`, else the default."""
    def pick(values: list[str], default: str) -> exp.Expression:
        ifs = [exp.If(this=_like(key, rule.key), true=exp.Literal.string(v))
               for rule, v in zip(account.by, values, strict=True)]
        return exp.Case(ifs=ifs, default=exp.Literal.string(default)) if ifs else \
            exp.Literal.string(default)

    accounts = pick([r.account for r in account.by], account.default)
    rule_ids = pick([f"accounts.{what}.by.{r.key}" for r in account.by],
                    f"accounts.{what}.default" if account.by else f"accounts.{what}")
    refs = pick([r.ref.rule_ref for r in account.by], account.ref.rule_ref)
    return accounts, rule_ids, refs


def _like(key: exp.Expression, glob: str) -> exp.Expression:
    return exp.Escape(this=exp.Like(this=key.copy(), expression=exp.Literal.string(
        glob_like(glob))), expression=exp.Literal.string("\\"))


def invoice_entries(ruleset: RuleSet) -> exp.Expression:
    """The query of tonight's invoice journal entries (`as_of` stays a placeholder)."""
    accounts = ruleset.client.accounts
    revenue, revenue_rule, revenue_ref = _account_case(
        accounts.revenue, exp.column("product_code"), "revenue")
    tax_account, _, _ = _account_case(accounts.tax_payable, exp.column("tax_code", table="t"),
                                      "tax_payable")
    return template(
        INVOICE_ENTRIES, ar_account=accounts.ar_control.default, ar_rule="accounts.ar_control",
        ar_ref=accounts.ar_control.ref.rule_ref, revenue_account=revenue,
        revenue_rule=revenue_rule, revenue_ref=revenue_ref, tax_account=tax_account)


def cash_entries(ruleset: RuleSet) -> exp.Expression:
    """The query of tonight's payment journal entries (`as_of` stays a placeholder)."""
    accounts = ruleset.client.accounts
    discount = accounts.discount
    terms = ruleset.client.refs.get("payment_terms")
    return template(
        CASH_ENTRIES, cash_account=accounts.cash.default, cash_ref=accounts.cash.ref.rule_ref,
        unapplied_account=accounts.unapplied_cash.default,
        unapplied_ref=accounts.unapplied_cash.ref.rule_ref,
        ar_account=accounts.ar_control.default, write_off_account=accounts.write_off.default,
        discount_account=discount.default if discount else None,
        discount_ref=terms.rule_ref if terms else None)
