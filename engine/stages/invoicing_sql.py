"""The invoicing stage's SQL, as text with `:name` placeholders (see `stages.sql.template`).

Statements run in the order of `invoicing.plan`; the names are the temp views and tables
they make. Only the lines, heads and held lines are tables: the steps before them are views,
computed once into `inv_lines_final`. (Inside the run's one transaction DuckDB frees no temp
table until the commit, so every table made is memory held to the end of the night.)

The line numbers and the rounded tax need windows over the lines. A window sorts whole
rows, so they are computed over the few columns they read, and written into the lines by
row id (`LINE_TAX`, `INVOICE_TAX`): at a million lines this is a third of the time of
windows over the wide rows. Windows partition by whole numbers given to the invoices and
tax groups, not by their keys' text: a quarter faster again. The invoice's number
(`invoice_no`, in the order of the keys) is kept in each line, and the heads, the lines'
output and the journal group and join by it (at a million lines the lines' output went
from 0.42 to 0.30 s).
"""

from __future__ import annotations

COLUMNS = ("txn_id, customer_id, txn_date, product_code, description, quantity, unit_price, "
           "currency, tax_category, po_number, ship_to_country, ship_to_region")

CANDIDATES = f"""
CREATE OR REPLACE TEMP VIEW inv_candidates AS
SELECT {COLUMNS}, 'drop' AS origin, CAST(NULL AS DATE) AS held_since FROM drop_transactions
UNION ALL
SELECT {COLUMNS}, 'held' AS origin, held_since FROM state.held_lines
WHERE txn_id NOT IN (SELECT txn_id FROM drop_transactions)
"""

TAXED = """
CREATE OR REPLACE TEMP VIEW inv_taxed AS
SELECT t.*, :rule AS tax_rule, :matches AS tax_matches, :hits AS tax_hits, :note AS tax_note,
       customer.currency AS customer_currency
FROM (
  SELECT l.* REPLACE (coalesce(l.ship_to_country, c.country) AS ship_to_country,
                      coalesce(l.ship_to_region,
                               CASE WHEN coalesce(l.ship_to_country, c.country) = c.country
                                    THEN c.region END) AS ship_to_region),
         l.ship_to_country AS sent_ship_to_country, l.ship_to_region AS sent_ship_to_region
  FROM inv_candidates AS l JOIN state.customers AS c ON c.customer_id = l.customer_id
) AS t
JOIN state.customers AS customer ON customer.customer_id = t.customer_id
"""

# Every candidate line with its decision held or not, its invoice key, base amount and
# exact tax: the decision is evaluated once, for both the held lines and the invoiced.
AMOUNTS = """
CREATE OR REPLACE TEMP VIEW inv_amounts AS
SELECT x.*, :exact AS tax_exact
FROM (
  SELECT l.*, :held AS held, coalesce(l.po_number, '') AS po_key, r.code AS tax_code,
         r.rate AS tax_rate, r.rule_id, r.rule_ref, cur.minor, :base AS base_amount
  FROM inv_taxed AS l
  LEFT JOIN tax_rules AS r ON r.idx = l.tax_rule
  LEFT JOIN currencies AS cur ON cur.code = l.currency
) AS x
"""

# The lines, numbered and taxed by the UPDATE that follows once the held are moved out.
LINES_TABLE = """
CREATE OR REPLACE TEMP TABLE inv_lines_final AS
SELECT *, CAST(NULL AS BIGINT) AS invoice_no, CAST(NULL AS BIGINT) AS line_no,
       CAST(NULL AS DECIMAL(18,4)) AS tax_amount, CAST(NULL AS DECIMAL(18,4)) AS net_amount
FROM inv_amounts
"""

HELD = """
CREATE OR REPLACE TEMP TABLE inv_held AS
SELECT * FROM inv_lines_final WHERE held
"""

UNHELD = """
DELETE FROM inv_lines_final WHERE held
"""

# Lines are numbered per invoice by date, then id. Each line gets the whole number of its
# invoice, in the order of the invoices' keys: the heads, the lines' output and the
# journal group and join by it, not by the keys' text.
LINE_TAX = """
UPDATE inv_lines_final SET invoice_no = o.invoice_no, line_no = o.line_no,
                           tax_amount = o.tax_amount, net_amount = :net
FROM (
  WITH invoices AS (
    SELECT customer_id, currency, po_key,
           row_number() OVER (ORDER BY customer_id, currency, po_key) AS invoice_no
    FROM inv_lines_final GROUP BY customer_id, currency, po_key
  )
  SELECT a.rowid AS k, i.invoice_no,
         row_number() OVER (PARTITION BY i.invoice_no ORDER BY a.txn_date, a.txn_id) AS line_no,
         a.base_amount, :tax AS tax_amount
  FROM inv_lines_final AS a
  JOIN invoices AS i ON i.customer_id = a.customer_id AND i.currency = a.currency
                    AND i.po_key = a.po_key
) AS o
WHERE o.k = inv_lines_final.rowid
"""

# The groups (invoice, tax code and rate) are summed once, and numbered: the windows
# partition by those numbers rather than by the text of the keys.
INVOICE_TAX = """
UPDATE inv_lines_final SET invoice_no = o.invoice_no, line_no = o.line_no,
                           tax_amount = o.tax_amount, net_amount = :net
FROM (
  WITH lines AS (
    SELECT rowid AS k, customer_id, currency, po_key, tax_code, tax_rate, minor, base_amount,
           tax_exact, txn_date, txn_id, :trunc AS tax_trunc
    FROM inv_lines_final AS a
  ), sums AS (
    SELECT *, dense_rank() OVER (ORDER BY customer_id, currency, po_key) AS invoice_no,
           row_number() OVER () AS group_no
    FROM (SELECT customer_id, currency, po_key, tax_code, tax_rate, any_value(minor) AS minor,
                 sum(base_amount) AS base_sum, sum(tax_trunc) AS group_trunc
          FROM lines GROUP BY customer_id, currency, po_key, tax_code, tax_rate)
  ), groups AS (
    SELECT invoice_no, group_no, customer_id, currency, po_key, tax_code, tax_rate,
           :unit AS unit, CAST((:group_tax - group_trunc) / :unit AS BIGINT) AS units
    FROM sums AS a
  ), numbered AS (
    SELECT l.k, l.base_amount, l.tax_trunc, l.tax_exact - l.tax_trunc AS tax_rem, g.unit,
           g.units, g.group_no, g.invoice_no,
           row_number() OVER (PARTITION BY g.invoice_no ORDER BY l.txn_date, l.txn_id) AS line_no
    FROM lines AS l
    JOIN groups AS g ON g.customer_id = l.customer_id AND g.currency = l.currency
                    AND g.po_key = l.po_key AND g.tax_code IS NOT DISTINCT FROM l.tax_code
                    AND g.tax_rate IS NOT DISTINCT FROM l.tax_rate
  ), ranked AS (  -- only a group with units to share out needs its lines ranked (a third)
    SELECT *, row_number() OVER (
             PARTITION BY group_no
             ORDER BY CASE WHEN units >= 0 THEN -tax_rem ELSE tax_rem END, line_no) AS rem_rank
    FROM numbered WHERE coalesce(units, 0) <> 0
    UNION ALL
    SELECT *, NULL FROM numbered WHERE coalesce(units, 0) = 0
  )
  SELECT k, invoice_no, line_no, base_amount,
         CAST(tax_trunc + CASE WHEN rem_rank <= abs(units) THEN sign(units) * unit ELSE 0 END
              AS DECIMAL(18,4)) AS tax_amount
  FROM ranked
) AS o
WHERE o.k = inv_lines_final.rowid
"""

HEADS = """
CREATE OR REPLACE TEMP TABLE inv_heads AS
SELECT h.*, :number AS invoice_id, CAST(:as_of AS DATE) AS invoice_date,
       CASE WHEN h.document_type = 'credit_note' THEN CAST(:as_of AS DATE)
            ELSE CAST(:as_of AS DATE)
                 + CAST(coalesce(c.payment_terms_days, :net_days) AS INTEGER) END AS due_date
FROM (
  SELECT *, row_number() OVER (PARTITION BY document_type ORDER BY invoice_no) AS night_seq
  FROM (
    SELECT invoice_no, any_value(customer_id) AS customer_id, any_value(currency) AS currency,
           any_value(po_key) AS po_key, max(po_number) AS po_number,
           sum(net_amount) AS net_amount, sum(tax_amount) AS tax_amount,
           sum(net_amount) + sum(tax_amount) AS gross_amount,
           CASE WHEN sum(net_amount) + sum(tax_amount) < 0 THEN 'credit_note'
                ELSE 'invoice' END AS document_type
    FROM inv_lines_final GROUP BY invoice_no
  )
) AS h
JOIN state.customers AS c ON c.customer_id = h.customer_id
"""

INVOICES = """
SELECT invoice_id, document_type, customer_id, invoice_date, due_date, currency, net_amount,
       tax_amount, gross_amount, po_number
FROM inv_heads ORDER BY document_type DESC, night_seq
"""

LINES = """
SELECT h.invoice_id, l.line_no, l.txn_id, l.product_code, l.description, l.quantity,
       l.unit_price, l.net_amount, l.tax_code, l.tax_rate, l.tax_amount, l.tax_note,
       l.rule_id, l.rule_ref
FROM inv_lines_final AS l
JOIN inv_heads AS h ON h.invoice_no = l.invoice_no
ORDER BY h.document_type <> 'invoice', h.night_seq, l.line_no  -- invoices first
"""

HELD_ROWS = """
SELECT txn_id, customer_id, txn_date, product_code, description, quantity, unit_price, currency,
       tax_category, po_number, ship_to_country, ship_to_region, origin, held_since, tax_matches,
       tax_hits, customer_currency
FROM inv_held ORDER BY txn_id
"""

OPEN = """
INSERT INTO state.open_items (invoice_id, customer_id, item_type, invoice_date, due_date,
                              currency, amount_original, amount_open, dunning_level,
                              last_dunned_on, opened_on, closed_on)
SELECT invoice_id, customer_id, document_type, invoice_date, due_date, currency, gross_amount,
       gross_amount, 0, NULL, invoice_date, CASE WHEN gross_amount = 0 THEN invoice_date END
FROM inv_heads"""

PROCESSED = """
INSERT INTO state.processed_ids SELECT 'txn', txn_id, ?, ? FROM inv_lines_final"""

# Every held line was a candidate tonight: the held set becomes tonight's inv_held.
UNHOLD = """
DELETE FROM state.held_lines"""

HELD_COLUMNS = COLUMNS.replace("ship_to_country, ship_to_region",
                                 "sent_ship_to_country, sent_ship_to_region")

HOLD = f"""
INSERT INTO state.held_lines
SELECT {HELD_COLUMNS}, coalesce(held_since, ?) FROM inv_held"""
