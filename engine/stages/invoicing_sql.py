"""The invoicing stage's SQL, as text with `:name` placeholders (see `stages.sql.template`).

Statements run in the order of `invoicing.plan`; the names are the temp views and tables
they make. Only the lines, heads and held lines are tables: the steps before them are views,
computed once into `inv_lines_final`. (Inside the run's one transaction DuckDB frees no temp
table until the commit, so every table made is memory held to the end of the night.)

The line numbers and the rounded tax need windows over the lines. A window sorts whole
rows, so they are computed over the few columns they read, and written into the lines by
row id (`LINE_TAX`, `INVOICE_TAX`): at a million lines this is a third of the time of
windows over the wide rows.
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

HELD = """
CREATE OR REPLACE TEMP TABLE inv_held AS
SELECT * FROM inv_taxed WHERE :held
"""

AMOUNTS = """
CREATE OR REPLACE TEMP VIEW inv_amounts AS
SELECT x.*, :exact AS tax_exact
FROM (
  SELECT l.*, coalesce(l.po_number, '') AS po_key, r.code AS tax_code, r.rate AS tax_rate,
         r.rule_id, r.rule_ref, cur.minor, :base AS base_amount
  FROM inv_taxed AS l
  JOIN tax_rules AS r ON r.idx = l.tax_rule
  JOIN currencies AS cur ON cur.code = l.currency
  WHERE NOT (:held)
) AS x
"""

# The lines, numbered and taxed by the UPDATE that follows.
LINES_TABLE = """
CREATE OR REPLACE TEMP TABLE inv_lines_final AS
SELECT *, CAST(NULL AS BIGINT) AS line_no, CAST(NULL AS DECIMAL(18,4)) AS tax_amount,
       CAST(NULL AS DECIMAL(18,4)) AS net_amount
FROM inv_amounts
"""

# Lines are numbered per invoice by date, then id.
_LINE_NO = """row_number() OVER (PARTITION BY customer_id, currency, po_key
                                   ORDER BY txn_date, txn_id) AS line_no"""

LINE_TAX = f"""
UPDATE inv_lines_final SET line_no = o.line_no, tax_amount = o.tax_amount, net_amount = :net
FROM (
  SELECT rowid AS k, {_LINE_NO}, base_amount, :tax AS tax_amount FROM inv_lines_final AS a
) AS o
WHERE o.k = inv_lines_final.rowid
"""

INVOICE_TAX = f"""
UPDATE inv_lines_final SET line_no = o.line_no, tax_amount = o.tax_amount, net_amount = :net
FROM (
  WITH numbered AS (
    SELECT rowid AS k, customer_id, currency, po_key, tax_code, tax_rate, minor, base_amount,
           tax_exact, {_LINE_NO}, :trunc AS tax_trunc
    FROM inv_lines_final AS a
  ), grouped AS (
    SELECT a.*,
           :group_tax AS group_tax,
           a.tax_exact - a.tax_trunc AS tax_rem,
           :unit AS unit
    FROM (SELECT *, sum(base_amount) OVER g AS base_sum, sum(tax_trunc) OVER g AS group_trunc
          FROM numbered
          WINDOW g AS (PARTITION BY customer_id, currency, po_key, tax_code, tax_rate)) AS a
  ), spread AS (
    SELECT *, CAST((group_tax - group_trunc) / unit AS BIGINT) AS units FROM grouped
  ), ranked AS (
    SELECT *, row_number() OVER (
             PARTITION BY customer_id, currency, po_key, tax_code, tax_rate
             ORDER BY CASE WHEN units >= 0 THEN -tax_rem ELSE tax_rem END, line_no) AS rem_rank
    FROM spread
  )
  SELECT k, line_no, base_amount,
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
  SELECT *, row_number() OVER (PARTITION BY document_type
                               ORDER BY customer_id, currency, po_key) AS night_seq
  FROM (
    SELECT customer_id, currency, po_key, max(po_number) AS po_number,
           sum(net_amount) AS net_amount, sum(tax_amount) AS tax_amount,
           sum(net_amount) + sum(tax_amount) AS gross_amount,
           CASE WHEN sum(net_amount) + sum(tax_amount) < 0 THEN 'credit_note'
                ELSE 'invoice' END AS document_type
    FROM inv_lines_final GROUP BY customer_id, currency, po_key
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
JOIN inv_heads AS h ON h.customer_id = l.customer_id AND h.currency = l.currency
                   AND h.po_key = l.po_key
ORDER BY h.document_type DESC, h.night_seq, l.line_no
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
