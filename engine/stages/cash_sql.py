"""The cash-application stage's SQL, as text with `:name` placeholders (see `stages.sql.template`).

Temp tables: `cash_pay` (tonight's payments and the unapplied cash carried from
earlier nights, with what each still has to apply), `cash_items` (open items
with what is still open), `cash_refs` (invoice numbers found in references),
and `cash_apps` (every application made tonight). A strategy runs in rounds of
`*_CANDIDATES` → `*_PICK` → `GO` → `SETTLE` → `APPLY_*` (see `cash.run`).
"""

from __future__ import annotations

PAYMENTS = """
CREATE OR REPLACE TEMP TABLE cash_pay AS
SELECT t.payment_id, t.customer_id, t.currency, t.received_on, t.amount, t.payer_name,
       t.reference, CAST(t.cash AS DECIMAL(18,4)) AS cash, t.origin, cur.minor,
       'open' AS state, CAST(NULL AS INTEGER) AS strategy_idx, CAST(NULL AS VARCHAR) AS problem,
       CAST(NULL AS VARCHAR) AS match_customer
FROM (
  SELECT payment_id, customer_id, currency, received_on, amount, payer_name, reference,
         amount AS cash, 'drop' AS origin
  FROM drop_payments
  UNION ALL
  SELECT payment_id, customer_id, currency, received_on, amount, payer_name, reference,
         cash_open, 'carried'
  FROM state.unapplied_cash WHERE closed_on IS NULL
) AS t
LEFT JOIN state.customers AS customer ON customer.customer_id = t.customer_id
JOIN currencies AS cur ON cur.code = t.currency
"""


def item_key(column: str) -> str:
    """The key an item id is matched by (`NW-2026-000041` -> `NW2026000041`): letters
    and digits only, upper case. An id of letters, digits and dashes (most are) has its
    dashes replaced: the same key in a third of the time of the regular expression
    (every open item is keyed every night)."""
    return (f"CASE WHEN regexp_full_match({column}, '[A-Za-z0-9-]*') "
            f"THEN upper(replace({column}, '-', '')) "
            f"ELSE upper(regexp_replace({column}, '[^A-Za-z0-9]', '', 'g')) END")


# `alloc_rank` is the allocation order of a customer's items. Ranks are only ever compared
# within one payment, whose items are always one customer's, so they are numbered per
# customer: windows over partitions run in parallel, one over every item does not.
ITEMS = f"""
CREATE OR REPLACE TEMP TABLE cash_items AS
SELECT o.invoice_id, o.customer_id, o.currency, o.item_type, o.invoice_date, o.due_date,
       o.amount_original, CAST(o.amount_open AS DECIMAL(18,4)) AS open_amount,
       CAST(o.amount_open AS DECIMAL(18,4)) AS open_start,
       {item_key("o.invoice_id")} AS ref_key,
       coalesce(d.status = 'open', false) AS disputed, d.opened_on AS disputed_since,
       CASE WHEN o.item_type IN ('invoice', 'opening') THEN :discount ELSE 0 END AS discount,
       o.invoice_date + :discount_days AS discount_until,
       :component AS component,
       row_number() OVER (PARTITION BY o.customer_id
                          ORDER BY :component, o.due_date, o.invoice_id) AS alloc_rank
FROM state.open_items AS o
LEFT JOIN state.disputes AS d ON d.invoice_id = o.invoice_id
JOIN currencies AS cur ON cur.code = o.currency
WHERE o.closed_on IS NULL AND o.amount_open <> 0
"""

# Invoice numbers in the remittance text, each turned into the key of an item id
# (letters and digits only, upper case, the sequence padded as the format pads it).
REFS = """
SELECT DISTINCT payment_id, :key AS ref_key
FROM (SELECT payment_id, unnest(regexp_extract_all(reference, :pattern, 0)) AS found
      FROM cash_pay WHERE reference IS NOT NULL)
"""

APPS = """
CREATE OR REPLACE TEMP TABLE cash_apps (
  payment_id VARCHAR, invoice_id VARCHAR, customer_id VARCHAR, applied DECIMAL(18,4),
  written_off DECIMAL(18,4), discount DECIMAL(18,4), currency VARCHAR, strategy_idx INTEGER,
  mode VARCHAR, alloc_rank BIGINT)
"""

# reference: every open item of the payment's currency its reference names; of the
# payer when the payer is known, of one customer when not. Credit notes it names are
# offset against the invoices it names, when those come to more.
REFERENCE_CANDIDATES = """
CREATE OR REPLACE TEMP TABLE cash_cand AS
WITH named AS MATERIALIZED (  -- first by key: a join planned from cash_pay crosses items
  SELECT r.payment_id, i.invoice_id, i.customer_id, i.currency, i.due_date, i.open_amount
  FROM cash_refs AS r JOIN cash_items AS i ON i.ref_key = r.ref_key
  WHERE i.open_amount <> 0
)
SELECT DISTINCT p.payment_id, n.invoice_id, n.customer_id, n.due_date, n.open_amount
FROM named AS n
JOIN cash_pay AS p ON p.payment_id = n.payment_id
WHERE p.state = 'open' AND :flag AND n.currency = p.currency
  AND (p.customer_id IS NULL OR n.customer_id = p.customer_id)
"""

REFERENCE_PICK = """
CREATE OR REPLACE TEMP TABLE cash_pick AS
SELECT payment_id, invoice_id, customer_id, 'match' AS outcome
FROM cash_cand
WHERE payment_id IN (SELECT payment_id FROM cash_cand GROUP BY payment_id
                     HAVING count(DISTINCT customer_id) = 1 AND sum(open_amount) > 0)
"""

# amount: the payer's undisputed open items the payment settles within tolerance.
AMOUNT_CANDIDATES = """
CREATE OR REPLACE TEMP TABLE cash_cand AS
SELECT p.payment_id, p.received_on, i.invoice_id, i.customer_id, i.due_date,
       :distance AS distance
FROM cash_pay AS p
JOIN cash_items AS i ON i.customer_id = p.customer_id AND i.currency = p.currency
WHERE p.state = 'open' AND :flag AND i.open_amount > 0 AND NOT i.disputed AND :fits
"""

# Of a payment's candidates only the closest count (an exact item beats one within
# tolerance). Several equally close: `tie_break` oldest takes the earliest due; payments
# with the same candidates share them out in order of receipt, the k-th taking the k-th.
AMOUNT_PICK = """
CREATE OR REPLACE TEMP TABLE cash_pick AS
WITH closest AS (
  SELECT * FROM (SELECT *, rank() OVER (PARTITION BY payment_id ORDER BY distance) AS d
                 FROM cash_cand)
  WHERE d = 1
), shared AS (
  SELECT *, count(*) OVER (PARTITION BY payment_id) AS n,
         row_number() OVER (PARTITION BY payment_id ORDER BY due_date, invoice_id) AS r,
         string_agg(invoice_id, ',' ORDER BY invoice_id) OVER (PARTITION BY payment_id)
           AS candidates
  FROM closest
), turns AS (
  SELECT *, dense_rank() OVER (PARTITION BY candidates ORDER BY received_on, payment_id)
           AS turn
  FROM shared
)
SELECT payment_id, invoice_id, customer_id,
       CASE WHEN n > 1 AND :tie_exception THEN 'ambiguous' ELSE 'match' END AS outcome
FROM turns
WHERE CASE WHEN n > 1 AND :tie_exception THEN true ELSE r = turn END
"""

# A payment goes this round unless an earlier payment (received first, then by
# id) picked one of its items; it is tried again next round against what is left.
GO = """
CREATE OR REPLACE TEMP TABLE cash_go AS
SELECT k.payment_id, k.invoice_id
FROM cash_pick AS k
WHERE k.outcome = 'match' AND k.payment_id NOT IN (
  SELECT a.payment_id
  FROM cash_pick AS a
  JOIN cash_pick AS b ON b.invoice_id = a.invoice_id AND b.payment_id <> a.payment_id
                     AND b.outcome = 'match'
  JOIN cash_pay AS pa ON pa.payment_id = a.payment_id
  JOIN cash_pay AS pb ON pb.payment_id = b.payment_id
  WHERE a.outcome = 'match'
    AND (pb.received_on < pa.received_on
         OR (pb.received_on = pa.received_on AND pb.payment_id < pa.payment_id)))
"""

DEFERRED = """
SELECT count(DISTINCT payment_id) FROM cash_pick
WHERE outcome = 'match' AND payment_id NOT IN (SELECT payment_id FROM cash_go)
"""

# One payment and its items, in allocation order. Credit notes (negative items, named
# with invoices by a reference) are offset first: their credit adds to the cash. Then
# `full`: the cash covers every invoice; `settle`: short within tolerance, or short by
# about the early-payment discounts the payment may take (an item takes its discount
# only while nothing of it is paid, tonight's earlier payments included); `short`:
# beyond. Discounts are granted in allocation order up to what the payment is short; the
# cash then goes to each item's rest in allocation order, and under `settle` what an item
# still lacks is written off.
SETTLE = """
CREATE OR REPLACE TEMP TABLE cash_settled AS
WITH s AS (
  SELECT g.payment_id, g.invoice_id, i.customer_id, p.currency, p.cash, i.open_amount,
         i.alloc_rank, i.open_amount < 0 AS credit,
         CASE WHEN i.open_amount > 0 AND p.received_on <= i.discount_until
                   AND i.open_amount = i.amount_original
              THEN i.discount ELSE 0 END AS disc
  FROM cash_go AS g
  JOIN cash_pay AS p ON p.payment_id = g.payment_id
  JOIN cash_items AS i ON i.invoice_id = g.invoice_id
), t AS (
  SELECT *,
         sum(greatest(open_amount, 0)) OVER (PARTITION BY payment_id) AS total_open,
         cash - sum(least(open_amount, 0)) OVER (PARTITION BY payment_id) AS cash_in,
         sum(disc) OVER (PARTITION BY payment_id) AS total_disc,
         coalesce(sum(disc) OVER (PARTITION BY payment_id ORDER BY credit, alloc_rank
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
           AS disc_before
  FROM s
), m AS (
  SELECT *, total_open - cash_in AS short,
         CASE WHEN cash_in >= total_open THEN 'full' WHEN :discounted OR :within THEN 'settle'
              ELSE 'short' END AS mode,
         CASE WHEN cash_in < total_open AND :discounted
              THEN least(total_open - cash_in, total_disc) ELSE 0 END AS granted_total
  FROM t
), g AS (
  SELECT *, greatest(least(granted_total - disc_before, disc), 0) AS granted FROM m
), n AS (
  SELECT *, greatest(open_amount, 0) - granted AS need,
         coalesce(sum(greatest(open_amount, 0) - granted) OVER (
           PARTITION BY payment_id ORDER BY credit, alloc_rank
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS need_before
  FROM g
)
SELECT payment_id, invoice_id, customer_id, currency, mode, alloc_rank, total_open, cash,
       CAST(CASE WHEN credit THEN open_amount
                 ELSE greatest(least(cash_in - need_before, need), 0) END
            AS DECIMAL(18,4)) AS applied,
       CAST(CASE WHEN mode = 'short' OR credit THEN 0
                 ELSE need - greatest(least(cash_in - need_before, need), 0) END
            AS DECIMAL(18,4)) AS written_off,
       CAST(granted AS DECIMAL(18,4)) AS discount
FROM n
"""

APPLY_ROWS = """
INSERT INTO cash_apps
SELECT payment_id, invoice_id, customer_id, applied, written_off, discount, currency,
       :strategy, mode, alloc_rank
FROM cash_settled
WHERE (mode <> 'short' OR NOT :short_exception)
  AND (applied <> 0 OR written_off <> 0 OR discount <> 0)
"""

APPLY_ITEMS = """
UPDATE cash_items SET open_amount = cash_items.open_amount - x.reduced
FROM (SELECT invoice_id, sum(applied + written_off + discount) AS reduced
      FROM cash_settled WHERE mode <> 'short' OR NOT :short_exception
      GROUP BY invoice_id) AS x
WHERE cash_items.invoice_id = x.invoice_id
"""

APPLY_PAYMENTS = """
UPDATE cash_pay SET cash = cash_pay.cash - x.applied, state = 'matched', strategy_idx = :strategy,
                    match_customer = x.customer_id
FROM (SELECT payment_id, sum(applied) AS applied, min(customer_id) AS customer_id
      FROM cash_settled WHERE mode <> 'short' OR NOT :short_exception
      GROUP BY payment_id) AS x
WHERE cash_pay.payment_id = x.payment_id
"""

SHORT_ROWS = """
SELECT s.payment_id, s.invoice_id, s.total_open, s.cash, p.currency, p.origin, s.customer_id
FROM cash_settled AS s JOIN cash_pay AS p ON p.payment_id = s.payment_id
WHERE s.mode = 'short' ORDER BY s.payment_id, s.alloc_rank
"""

AMBIGUOUS_ROWS = """
SELECT k.payment_id, k.invoice_id, i.open_amount, p.cash, p.currency, p.origin, k.customer_id
FROM cash_pick AS k
JOIN cash_items AS i ON i.invoice_id = k.invoice_id
JOIN cash_pay AS p ON p.payment_id = k.payment_id
WHERE k.outcome = 'ambiguous' ORDER BY k.payment_id, i.due_date, k.invoice_id
"""

MARK_EXCEPTION = """
UPDATE cash_pay SET state = 'exception', problem = ?, strategy_idx = ?
WHERE payment_id IN (SELECT unnest(?::VARCHAR[]))
"""

COMBINATION_GO = """
CREATE OR REPLACE TEMP TABLE cash_go AS SELECT payment_id, invoice_id FROM cash_combination
"""

# The combination search reads the payer's undisputed open items.
COMBINATION_INPUT = """
SELECT p.payment_id, p.cash, i.invoice_id, i.open_amount,
       CASE WHEN p.received_on <= i.discount_until AND i.open_amount = i.amount_original
            THEN i.discount ELSE 0 END,
       i.alloc_rank
FROM cash_pay AS p
JOIN cash_items AS i ON i.customer_id = p.customer_id AND i.currency = p.currency
WHERE p.state = 'open' AND :flag AND i.open_amount > 0 AND NOT i.disputed
ORDER BY p.received_on, p.payment_id, i.alloc_rank
"""

# What is left on a payment after tonight: a row with no invoice for every payment
# of the drop with cash left, and for carried cash of which some was applied.
REST = """
INSERT INTO cash_apps
SELECT payment_id, NULL, coalesce(customer_id, match_customer), cash, 0, 0, currency,
       strategy_idx, 'rest', NULL
FROM cash_pay
WHERE cash > 0 AND (origin = 'drop' OR payment_id IN (SELECT payment_id FROM cash_apps))
"""

APPLICATIONS = """
SELECT a.payment_id, a.invoice_id, a.applied AS applied_amount,
       a.written_off AS written_off_amount, a.discount AS discount_amount, a.currency,
       s.strategy_id AS strategy, s.strategy_id AS rule_id,
       coalesce(s.rule_ref, :unmatched_ref) AS rule_ref
FROM cash_apps AS a
LEFT JOIN cash_strategies AS s ON s.idx = a.strategy_idx
ORDER BY a.payment_id, a.invoice_id IS NULL, a.alloc_rank
"""

UNMATCHED_PAYMENTS = """
SELECT payment_id, customer_id, currency, received_on, cash, reference
FROM cash_pay WHERE state = 'open' AND origin = 'drop' ORDER BY payment_id
"""

# Items an unmatched payment might have meant: those its reference names (open or
# not), and the payer's items open at the start of the night in any currency; with
# the payments that settled them tonight.
# The candidates of tonight's unmatched payments: the items their references name (open
# or not), and the open items of their customer. Which payments paid a named item tonight
# is looked up for the candidates only.
UNMATCHED_CANDIDATES = f"""
WITH named AS MATERIALIZED (
  SELECT p.payment_id, o.invoice_id, o.customer_id, o.currency, o.due_date,
         coalesce(i.open_amount, o.amount_open) AS open_amount, o.closed_on,
         coalesce(i.disputed, false) AS disputed, true AS named,
         coalesce(i.open_start, o.amount_open) AS open_start
  FROM cash_pay AS p
  JOIN cash_refs AS r ON r.payment_id = p.payment_id
  JOIN (SELECT *, {item_key("invoice_id")} AS ref_key
        FROM state.open_items) AS o ON o.ref_key = r.ref_key
  LEFT JOIN cash_items AS i ON i.invoice_id = o.invoice_id
  WHERE p.state = 'open' AND p.origin = 'drop'
), candidates AS MATERIALIZED (
  SELECT * FROM named
  UNION ALL
  SELECT p.payment_id, i.invoice_id, i.customer_id, i.currency, i.due_date, i.open_amount,
         NULL, i.disputed, false, i.open_start
  FROM cash_pay AS p
  JOIN cash_items AS i ON i.customer_id = p.customer_id
  WHERE p.state = 'open' AND p.origin = 'drop' AND i.open_start > 0
    AND NOT EXISTS (SELECT 1 FROM named AS n
                    WHERE n.payment_id = p.payment_id AND n.invoice_id = i.invoice_id)
), paid AS (
  SELECT invoice_id, string_agg(DISTINCT payment_id, ', ' ORDER BY payment_id) AS paid_by
  FROM cash_apps WHERE invoice_id IN (SELECT invoice_id FROM candidates)
  GROUP BY invoice_id
)
SELECT c.*, b.paid_by FROM candidates AS c LEFT JOIN paid AS b ON b.invoice_id = c.invoice_id
"""

# State upkeep at commit.
CLOSE_ITEMS = """
UPDATE state.open_items SET amount_open = state.open_items.amount_open - x.reduced,
       closed_on = CASE WHEN state.open_items.amount_open - x.reduced = 0 THEN ?::DATE END,
       last_paid_on = x.paid_on
FROM (SELECT a.invoice_id, sum(a.applied + a.written_off + a.discount) AS reduced,
             max(p.received_on) AS paid_on
      FROM cash_apps AS a JOIN cash_pay AS p ON p.payment_id = a.payment_id
      WHERE a.invoice_id IS NOT NULL GROUP BY a.invoice_id) AS x
WHERE state.open_items.invoice_id = x.invoice_id
"""

CARRY = """
UPDATE state.unapplied_cash SET cash_open = p.cash,
       customer_id = coalesce(state.unapplied_cash.customer_id, p.match_customer),
       closed_on = CASE WHEN p.cash = 0 THEN ?::DATE END
FROM cash_pay AS p
WHERE p.origin = 'carried' AND p.payment_id = state.unapplied_cash.payment_id
"""

UNAPPLY = """
INSERT INTO state.unapplied_cash
SELECT payment_id, coalesce(customer_id, match_customer), currency, received_on, amount,
       payer_name, reference, cash, ?::DATE, NULL
FROM cash_pay WHERE origin = 'drop' AND cash > 0
"""

PROCESSED = """
INSERT INTO state.processed_ids SELECT 'payment', payment_id, ?, ? FROM cash_pay
WHERE origin = 'drop'
"""
