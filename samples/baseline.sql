-- The first night of the generated client `synth`, written by hand in plain DuckDB SQL:
-- the baseline `make bench` (samples/bench.py) measures `ruledger run` against.
--
-- It is what a competent engineer would write for this one client: the rules of
-- rules/synth/*.yaml (as samples/generate.py writes them) hard-coded, the drop's Parquet
-- files (generate.py's default format) read directly, each output table written as
-- Parquet. The runner substitutes {drop} (the drop folder), {out} (the output folder) and
-- {as_of} (the night, YYYY-MM-DD), then runs the whole script in one DuckDB connection.
--
-- It does the same work as ruledger on the same rows: tax, invoicing with invoice-level
-- rounding and numbering, reference, amount and combination matching of payments to
-- open items (opening items included), dunning with fees and interest, credit decisions,
-- journal entries and aging. Money is DECIMAL throughout: DuckDB's DECIMAL / DECIMAL is
-- a DOUBLE, so every division is done on whole numbers (`div_half_up`), and products are
-- taken as DECIMAL(38,x). On generated drops of 2,000 to 1,000,000 lines its output rows
-- equal ruledger's in every column it writes (tests/test_bench.py checks totals).
--
-- Where it differs from ruledger, on purpose:
-- - one night from an empty state: no state store, nothing carried between nights;
-- - no rejects table, exception report, provenance columns (rule_id, rule_ref, run_id) or
--   manifest; a bad row is dropped (a repeated id: the first row is kept; an unknown
--   customer; a line in another currency than its customer's);
-- - lines no tax rule covers are left out (ruledger holds them back for later nights);
-- - the reference pattern is looser (an invoice number anywhere in the text);
-- - matching runs each strategy once: a payment whose items an earlier payment (received
--   first, then by id) also picked falls through to the next strategy, where ruledger
--   tries it again in a further round; an amount match between equally close items takes
--   the oldest, without sharing them out among payments with the same candidates; the
--   combination search is exhaustive over the payer's items (sets of up to 3), without
--   ruledger's step budget;
-- - journal entries are written in order of entry id (ruledger: those of invoices, then
--   payments, then dunning charges, each in order of entry id);
-- - only currencies with two decimals occur (EUR, GBP, USD), so amounts are DECIMAL(18,2).

-- Helpers -------------------------------------------------------------------------------

CREATE MACRO as_of() AS DATE '{as_of}';
CREATE MACRO in_eu(country) AS country IN (
    'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE',
    'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE');
-- n / d for whole numbers n and d > 0, rounded half away from zero (the client's half_up).
CREATE MACRO div_half_up(n, d) AS sign(n) * ((abs(n) * 2 + d) // (2 * d));

-- Inputs --------------------------------------------------------------------------------

-- Customers: a later row of the same customer updates an earlier one.
CREATE TEMP TABLE customers AS
SELECT * EXCLUDE (file_row_number)
FROM read_parquet('{drop}/customers.parquet', file_row_number = true)
QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY file_row_number DESC) = 1;

-- Billable lines of known customers in their currency, each txn_id once (the first row).
CREATE TEMP TABLE lines AS
SELECT t.* EXCLUDE (file_row_number)
FROM read_parquet('{drop}/transactions.parquet', file_row_number = true) AS t
JOIN customers AS c ON c.customer_id = t.customer_id AND c.currency = t.currency
QUALIFY row_number() OVER (PARTITION BY t.txn_id ORDER BY t.file_row_number) = 1;

CREATE TEMP TABLE payments AS
SELECT p.* EXCLUDE (file_row_number)
FROM read_parquet('{drop}/payments.parquet', file_row_number = true) AS p
WHERE p.amount > 0
  AND (p.customer_id IS NULL OR p.customer_id IN (SELECT customer_id FROM customers))
QUALIFY row_number() OVER (PARTITION BY p.payment_id ORDER BY p.file_row_number) = 1;

CREATE TEMP TABLE opening AS
SELECT o.* EXCLUDE (file_row_number)
FROM read_parquet('{drop}/opening_items.parquet', file_row_number = true) AS o
WHERE o.customer_id IN (SELECT customer_id FROM customers)
QUALIFY row_number() OVER (PARTITION BY o.invoice_id ORDER BY o.file_row_number) = 1;

-- Each dispute row is an event: the latest per invoice stands.
CREATE TEMP TABLE disputed AS
SELECT invoice_id
FROM read_parquet('{drop}/disputes.parquet', file_row_number = true)
QUALIFY row_number() OVER (PARTITION BY invoice_id
                           ORDER BY opened_on DESC, file_row_number DESC) = 1
    AND status = 'open';

CREATE TEMP TABLE open_orders AS
SELECT customer_id, currency, amount
FROM read_parquet('{drop}/open_orders.parquet')
WHERE customer_id IN (SELECT customer_id FROM customers);

-- The latest rate to EUR on or before the night, per currency.
CREATE TEMP TABLE rates AS
SELECT from_currency AS currency, CAST(rate AS DECIMAL(18,8)) AS rate
FROM read_parquet('{drop}/fx_rates.parquet')
WHERE to_currency = 'EUR' AND from_currency <> 'EUR' AND rate_date <= as_of()
QUALIFY row_number() OVER (PARTITION BY from_currency ORDER BY rate_date DESC) = 1
UNION ALL
SELECT 'EUR', CAST(1 AS DECIMAL(18,8));

-- Tax (tax.yaml: hit policy first, prices without tax, rounding per invoice) -------------

-- Each tax code's rate, its tax payable account (client.yaml), and the rule giving it.
CREATE TEMP TABLE tax_rates (tax_code VARCHAR, rate DECIMAL(9,6), tax_account VARCHAR,
                             tax_rule VARCHAR);
INSERT INTO tax_rates VALUES
    ('EXEMPT', 0, '1770', 'exempt_certificate'), ('EXPORT', 0, '1770', 'export_non_eu'),
    ('EU-RC', 0, '1770', 'reverse_charge_eu_b2b'),
    ('OSS-AT-STD', 0.20, '1767', 'oss_at_standard'),
    ('OSS-AT-RED', 0.10, '1767', 'oss_at_reduced'),
    ('OSS-FR-STD', 0.20, '1767', 'oss_fr_standard'),
    ('OSS-FR-RED', 0.055, '1767', 'oss_fr_reduced'),
    ('OSS-NL-STD', 0.21, '1767', 'oss_nl_standard'),
    ('OSS-NL-RED', 0.09, '1767', 'oss_nl_reduced'),
    ('DE-RED', 0.07, '1771', 'de_reduced'), ('DE-STD', 0.19, '1776', 'de_standard');

-- Each line's tax code by the first rule that holds, and its net: quantity x unit price
-- rounded to the cent. A line no rule covers drops out at the join. Only what the sums
-- need is carried on; descriptions and notes join in when the lines are written.
CREATE TEMP TABLE taxed AS
WITH l AS (
  SELECT t.txn_id, t.customer_id, t.currency, coalesce(t.po_number, '') AS po_key,
         t.txn_date, t.product_code, t.quantity, t.unit_price,
         coalesce(t.ship_to_country, c.country) AS ship,
         coalesce(t.tax_category, 'standard') AS category, c.country AS customer_country,
         c.vat_id, coalesce(c.tax_exempt, false) AS tax_exempt, c.exemption_id
  FROM lines AS t JOIN customers AS c ON c.customer_id = t.customer_id
), coded AS (
  SELECT *,
         CASE
           WHEN tax_exempt AND exemption_id IS NOT NULL THEN 'EXEMPT'
           WHEN NOT in_eu(ship) THEN 'EXPORT'
           WHEN in_eu(ship) AND ship <> 'DE' AND customer_country <> 'DE'
                AND vat_id IS NOT NULL THEN 'EU-RC'
           WHEN ship IN ('AT', 'FR', 'NL') AND vat_id IS NULL
                AND category IN ('standard', 'reduced')
             THEN 'OSS-' || ship || CASE category WHEN 'standard' THEN '-STD' ELSE '-RED' END
           WHEN ship = 'DE' AND category = 'reduced' THEN 'DE-RED'
           WHEN ship = 'DE' AND category = 'standard' THEN 'DE-STD'
         END AS tax_code
  FROM l
)
SELECT x.txn_id, x.customer_id, x.currency, x.po_key, x.txn_date, x.product_code,
       x.tax_code, r.rate AS tax_rate, r.tax_account, r.tax_rule,
       CAST(round(CAST(x.quantity AS DECIMAL(38,6)) * x.unit_price, 2) AS DECIMAL(18,2)) AS net
FROM coded AS x JOIN tax_rates AS r ON r.tax_code = x.tax_code;

-- Invoice-level rounding: per invoice (customer, currency, PO) and tax code the tax is
-- rounded once; each line gets its exact tax cut to the cent, and the cents left over go
-- one each to the lines with the largest remainder, ties to the lower line number (lines
-- are numbered by date, then id).
CREATE TEMP TABLE invoice_lines AS
WITH x AS (
  SELECT *, CAST(net AS DECIMAL(38,2)) * tax_rate AS exact_tax FROM taxed
), groups AS (
  SELECT customer_id, currency, po_key, tax_code,
         CAST((round(sum(CAST(net AS DECIMAL(38,2))) * any_value(tax_rate), 2)
               - sum(exact_tax - exact_tax % 0.01)) * 100 AS BIGINT) AS cents
  FROM x GROUP BY customer_id, currency, po_key, tax_code
), ranked AS (
  SELECT x.*, g.cents,
         row_number() OVER (PARTITION BY x.customer_id, x.currency, x.po_key
                            ORDER BY x.txn_date, x.txn_id) AS line_no,
         row_number() OVER (
           PARTITION BY x.customer_id, x.currency, x.po_key, x.tax_code
           ORDER BY CASE WHEN g.cents >= 0 THEN -(x.exact_tax % 0.01)
                         ELSE x.exact_tax % 0.01 END, x.txn_date, x.txn_id) AS remainder_rank
  FROM x JOIN groups AS g ON g.customer_id = x.customer_id AND g.currency = x.currency
                         AND g.po_key = x.po_key AND g.tax_code = x.tax_code
)
SELECT txn_id, customer_id, currency, po_key, line_no, product_code, net, tax_code, tax_rate,
       tax_account, tax_rule,
       CAST(exact_tax - exact_tax % 0.01
            + CASE WHEN remainder_rank <= abs(cents) THEN sign(cents) * 0.01 ELSE 0 END
            AS DECIMAL(18,2)) AS tax
FROM ranked;

-- Invoicing (client.yaml: numbering, payment terms) ---------------------------------------

-- Each numbering series goes on after the highest number of the year among the opening
-- items.
CREATE TEMP TABLE last_numbers AS
WITH found AS (
  SELECT invoice_id LIKE 'SY-CN-%' AS credit,
         regexp_extract(invoice_id, '^SY-(?:CN-)?(\d{4})-(\d+)$', ['year', 'seq']) AS m
  FROM opening
)
SELECT coalesce(max(CAST(m.seq AS BIGINT)) FILTER (WHERE NOT credit), 0) AS last_invoice,
       coalesce(max(CAST(m.seq AS BIGINT)) FILTER (WHERE credit), 0) AS last_credit_note
FROM found WHERE m.year = CAST(year(as_of()) AS VARCHAR);

-- One document per customer, currency and PO: a credit note when its gross is negative;
-- numbered per series in order of customer, currency and PO; net 30 days unless the
-- customer has its own terms, a credit note due at once.
CREATE TEMP TABLE invoices AS
WITH heads AS (
  SELECT customer_id, currency, po_key, nullif(po_key, '') AS po_number,
         sum(net) AS net_amount, sum(tax) AS tax_amount, sum(net) + sum(tax) AS gross_amount
  FROM invoice_lines GROUP BY customer_id, currency, po_key
), typed AS (
  SELECT *, CASE WHEN gross_amount < 0 THEN 'credit_note' ELSE 'invoice' END AS document_type
  FROM heads
), numbered AS (
  SELECT *, row_number() OVER (PARTITION BY document_type
                               ORDER BY customer_id, currency, po_key) AS night_seq
  FROM typed
)
SELECT CASE WHEN n.document_type = 'invoice'
            THEN 'SY-' || year(as_of()) || '-' || lpad(CAST(s.last_invoice + n.night_seq
                                                                AS VARCHAR), 7, '0')
            ELSE 'SY-CN-' || year(as_of()) || '-' || lpad(CAST(s.last_credit_note + n.night_seq
                                                                   AS VARCHAR), 7, '0')
       END AS invoice_id,
       n.document_type, n.customer_id, as_of() AS invoice_date,
       CASE WHEN n.document_type = 'credit_note' THEN as_of()
            ELSE as_of() + CAST(coalesce(c.payment_terms_days, 30) AS INTEGER) END AS due_date,
       n.currency, CAST(n.net_amount AS DECIMAL(18,2)) AS net_amount,
       CAST(n.tax_amount AS DECIMAL(18,2)) AS tax_amount,
       CAST(n.gross_amount AS DECIMAL(18,2)) AS gross_amount, n.po_number, n.po_key,
       n.night_seq
FROM numbered AS n
CROSS JOIN last_numbers AS s
JOIN customers AS c ON c.customer_id = n.customer_id;

-- Open items: the opening items and tonight's documents, with what matching needs: the
-- key a reference finds them by, whether under dispute, the early-payment discount (2%
-- of the original amount within 10 days of the invoice date).
CREATE TEMP TABLE items AS
WITH all_items AS (
  SELECT invoice_id, customer_id, 'opening' AS item_type, invoice_date, due_date, currency,
         CAST(amount_open AS DECIMAL(18,2)) AS amount_original, coalesce(dunning_level, 0)
           AS dunning_level, last_dunned_on
  FROM opening
  UNION ALL
  SELECT invoice_id, customer_id, document_type, invoice_date, due_date, currency,
         gross_amount, 0, CAST(NULL AS DATE)
  FROM invoices
)
SELECT a.*, a.amount_original AS open_amount,
       upper(regexp_replace(a.invoice_id, '[^A-Za-z0-9]', '', 'g')) AS ref_key,
       a.invoice_id IN (SELECT invoice_id FROM disputed) AS disputed,
       CASE WHEN a.item_type IN ('invoice', 'opening')
            THEN CAST(round(CAST(a.amount_original AS DECIMAL(38,2)) * 0.02, 2)
                      AS DECIMAL(18,2))
            ELSE 0 END AS discount,
       a.invoice_date + 10 AS discount_until
FROM all_items AS a;

-- Cash application (matching.yaml) --------------------------------------------------------

-- Each payment with the cash it has left, and the strategy and customer that matched it.
CREATE TEMP TABLE pays AS
SELECT payment_id, received_on, amount, currency, customer_id, reference,
       CAST(amount AS DECIMAL(18,2)) AS cash, CAST(NULL AS VARCHAR) AS strategy,
       CAST(NULL AS VARCHAR) AS matched_customer
FROM payments;

-- Invoice and credit note numbers in remittance text, in any case, with or without
-- spaces, dashes, slashes, '#', '_', '.' or ':' between their parts.
CREATE TEMP TABLE refs AS
SELECT DISTINCT payment_id, upper(regexp_replace(found, '[^A-Za-z0-9]', '', 'g')) AS ref_key
FROM (SELECT payment_id,
             unnest(regexp_extract_all(
               reference, '(?i)sy[\s\-_#./:]*(?:cn[\s\-_#./:]*)?\d{4}[\s\-_#./:]*\d{7}'))
               AS found
      FROM pays WHERE reference IS NOT NULL);

CREATE TEMP TABLE apps (
  payment_id VARCHAR, invoice_id VARCHAR, customer_id VARCHAR, currency VARCHAR,
  applied DECIMAL(18,2), written_off DECIMAL(18,2), discount DECIMAL(18,2), strategy VARCHAR,
  due_date DATE);

-- by_reference: the open items in the payment's currency its reference names, of the
-- payer when known, else of one customer; what they come to must be positive.
CREATE TEMP TABLE picks AS
WITH named AS (
  SELECT r.payment_id, i.invoice_id, i.customer_id, i.open_amount
  FROM refs AS r
  JOIN items AS i ON i.ref_key = r.ref_key
  JOIN pays AS p ON p.payment_id = r.payment_id
  WHERE i.open_amount <> 0 AND i.currency = p.currency
    AND (p.customer_id IS NULL OR p.customer_id = i.customer_id)
)
SELECT payment_id, invoice_id FROM named
WHERE payment_id IN (SELECT payment_id FROM named GROUP BY payment_id
                     HAVING count(DISTINCT customer_id) = 1 AND sum(open_amount) > 0);

-- Every strategy's picks are settled alike, by the two macros below (defined here, once
-- `picks` exists, as DuckDB binds a macro's tables when it is made). Of the picks
-- (payment, item), a payment sharing an item with an earlier payment (received first,
-- then by id) is let go: the earlier one has it.
CREATE MACRO unshared() AS TABLE
SELECT k.payment_id, k.invoice_id FROM picks AS k
WHERE k.payment_id NOT IN (
  SELECT a.payment_id
  FROM picks AS a
  JOIN picks AS b ON b.invoice_id = a.invoice_id AND b.payment_id <> a.payment_id
  JOIN pays AS pa ON pa.payment_id = a.payment_id
  JOIN pays AS pb ON pb.payment_id = b.payment_id
  WHERE pb.received_on < pa.received_on
     OR (pb.received_on = pa.received_on AND pb.payment_id < pa.payment_id));

-- Settle each picked payment with its items, oldest due first (credit notes it names are
-- offset first: their credit adds to the cash). `full`: the cash covers the items;
-- `settle`: short within the tolerance (`tol_abs` and, when given, `tol_pct` of the open
-- amount), or short by about the early-payment discounts (granted oldest first), the rest
-- written off; `partial`: short beyond, the cash applied oldest first.
CREATE MACRO settled(tol_abs, tol_pct) AS TABLE
WITH s AS (
  SELECT k.payment_id, k.invoice_id, i.customer_id, p.currency, p.cash, i.open_amount,
         i.due_date, i.open_amount < 0 AS credit,
         CASE WHEN i.open_amount > 0 AND p.received_on <= i.discount_until
                   AND i.open_amount = i.amount_original THEN i.discount ELSE 0 END AS disc
  FROM unshared() AS k
  JOIN pays AS p ON p.payment_id = k.payment_id
  JOIN items AS i ON i.invoice_id = k.invoice_id
), t AS (
  SELECT *, sum(greatest(open_amount, 0)) OVER pay AS total_open,
         cash - sum(least(open_amount, 0)) OVER pay AS cash_in,
         sum(disc) OVER pay AS total_disc,
         coalesce(sum(disc) OVER earlier, 0) AS disc_before
  FROM s
  WINDOW pay AS (PARTITION BY payment_id),
         earlier AS (PARTITION BY payment_id ORDER BY credit, due_date, invoice_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), m AS (
  SELECT *, total_open - cash_in AS short, abs(total_open - cash_in - total_disc) AS off
  FROM t
), d AS (
  SELECT *, short > 0 AND total_disc > 0 AND off < short AND off <= tol_abs
              AND (tol_pct IS NULL OR off <= tol_pct * total_open) AS discounted,
            short <= tol_abs AND (tol_pct IS NULL OR short <= tol_pct * total_open) AS within
  FROM m
), g AS (
  SELECT *, CASE WHEN short <= 0 THEN 'full' WHEN discounted OR within THEN 'settle'
                 ELSE 'partial' END AS mode,
         greatest(least(CASE WHEN discounted THEN least(short, total_disc) ELSE 0 END
                        - disc_before, disc), 0) AS granted
  FROM d
), n AS (
  SELECT *, greatest(open_amount, 0) - granted AS need,
         coalesce(sum(greatest(open_amount, 0) - granted) OVER (
           PARTITION BY payment_id ORDER BY credit, due_date, invoice_id
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS need_before
  FROM g
), a AS (
  SELECT *, greatest(least(cash_in - need_before, need), 0) AS paid FROM n
)
SELECT payment_id, invoice_id, customer_id, currency,
       CAST(CASE WHEN credit THEN open_amount ELSE paid END AS DECIMAL(18,2)) AS applied,
       CAST(CASE WHEN credit OR mode = 'partial' THEN 0 ELSE need - paid END
            AS DECIMAL(18,2)) AS written_off,
       CAST(granted AS DECIMAL(18,2)) AS discount, due_date
FROM a;

CREATE TEMP TABLE settling AS SELECT * FROM settled(1.00, 0.01);
INSERT INTO apps
SELECT payment_id, invoice_id, customer_id, currency, applied, written_off, discount,
       'by_reference', due_date
FROM settling WHERE applied <> 0 OR written_off <> 0 OR discount <> 0;
UPDATE items SET open_amount = items.open_amount - x.reduced
FROM (SELECT invoice_id, sum(applied + written_off + discount) AS reduced
      FROM settling GROUP BY invoice_id) AS x
WHERE items.invoice_id = x.invoice_id;
UPDATE pays SET cash = pays.cash - x.applied, strategy = 'by_reference',
                matched_customer = x.customer_id
FROM (SELECT payment_id, sum(applied) AS applied, min(customer_id) AS customer_id
      FROM settling GROUP BY payment_id) AS x
WHERE pays.payment_id = x.payment_id;

-- by_amount: the payer's undisputed open item the payment settles within 0.50 (or within
-- 0.50 of its discount); the closest, then the oldest.
CREATE OR REPLACE TEMP TABLE picks AS
WITH candidates AS (
  SELECT p.payment_id, i.invoice_id, i.due_date, i.open_amount - p.cash AS short,
         CASE WHEN p.received_on <= i.discount_until AND i.open_amount = i.amount_original
              THEN i.discount ELSE 0 END AS disc
  FROM pays AS p
  JOIN items AS i ON i.customer_id = p.customer_id AND i.currency = p.currency
  WHERE p.strategy IS NULL AND i.open_amount > 0 AND NOT i.disputed
), fitting AS (
  SELECT *, disc > 0 AND short > 0 AND abs(short - disc) < short
              AND abs(short - disc) <= 0.50 AS discounted
  FROM candidates
)
SELECT payment_id, invoice_id FROM fitting
WHERE (short <= 0 AND -short <= 0.50) OR (short > 0 AND (short <= 0.50 OR discounted))
QUALIFY row_number() OVER (
  PARTITION BY payment_id
  ORDER BY CASE WHEN short <= 0 THEN -short WHEN discounted THEN abs(short - disc)
                ELSE short END, due_date, invoice_id) = 1;

CREATE OR REPLACE TEMP TABLE settling AS SELECT * FROM settled(0.50, NULL);
INSERT INTO apps
SELECT payment_id, invoice_id, customer_id, currency, applied, written_off, discount,
       'by_amount', due_date
FROM settling WHERE applied <> 0 OR written_off <> 0 OR discount <> 0;
UPDATE items SET open_amount = items.open_amount - x.reduced
FROM (SELECT invoice_id, sum(applied + written_off + discount) AS reduced
      FROM settling GROUP BY invoice_id) AS x
WHERE items.invoice_id = x.invoice_id;
UPDATE pays SET cash = pays.cash - x.applied, strategy = 'by_amount',
                matched_customer = x.customer_id
FROM (SELECT payment_id, sum(applied) AS applied, min(customer_id) AS customer_id
      FROM settling GROUP BY payment_id) AS x
WHERE pays.payment_id = x.payment_id;

-- by_combination: payments up to 50,000 of a known payer; the one set of at most 3 of
-- its undisputed open items the payment settles within 0.05 (or within 0.05 of their
-- discounts). Sets whose amount net of discounts passes cash + 0.05 are not grown.
CREATE OR REPLACE TEMP TABLE picks AS
WITH pool AS (
  SELECT p.payment_id, p.cash, i.invoice_id, i.open_amount,
         CASE WHEN p.received_on <= i.discount_until AND i.open_amount = i.amount_original
              THEN i.discount ELSE 0 END AS disc
  FROM pays AS p
  JOIN items AS i ON i.customer_id = p.customer_id AND i.currency = p.currency
  WHERE p.strategy IS NULL AND p.amount <= 50000 AND i.open_amount > 0 AND NOT i.disputed
    AND i.open_amount - i.discount <= p.cash + 0.05
), pairs AS (
  SELECT a.payment_id, a.cash, a.invoice_id AS first, b.invoice_id AS second,
         a.open_amount + b.open_amount AS total, a.disc + b.disc AS disc
  FROM pool AS a JOIN pool AS b ON b.payment_id = a.payment_id AND b.invoice_id > a.invoice_id
  WHERE a.open_amount - a.disc + b.open_amount - b.disc <= a.cash + 0.05
), sets AS (
  SELECT payment_id, cash, [invoice_id] AS ids, open_amount AS total, disc FROM pool
  UNION ALL
  SELECT payment_id, cash, [first, second], total, disc FROM pairs
  UNION ALL
  SELECT p.payment_id, p.cash, [p.first, p.second, c.invoice_id], p.total + c.open_amount,
         p.disc + c.disc
  FROM pairs AS p JOIN pool AS c ON c.payment_id = p.payment_id AND c.invoice_id > p.second
), fitting AS (
  SELECT payment_id, ids FROM sets
  WHERE (total <= cash AND cash - total <= 0.05)
     OR (total > cash AND (total - cash <= 0.05
                           OR (disc > 0 AND abs(total - cash - disc) < total - cash
                               AND abs(total - cash - disc) <= 0.05)))
  QUALIFY count(*) OVER (PARTITION BY payment_id) = 1
)
SELECT payment_id, unnest(ids) AS invoice_id FROM fitting;

CREATE OR REPLACE TEMP TABLE settling AS SELECT * FROM settled(0.05, NULL);
INSERT INTO apps
SELECT payment_id, invoice_id, customer_id, currency, applied, written_off, discount,
       'by_combination', due_date
FROM settling WHERE applied <> 0 OR written_off <> 0 OR discount <> 0;
UPDATE items SET open_amount = items.open_amount - x.reduced
FROM (SELECT invoice_id, sum(applied + written_off + discount) AS reduced
      FROM settling GROUP BY invoice_id) AS x
WHERE items.invoice_id = x.invoice_id;
UPDATE pays SET cash = pays.cash - x.applied, strategy = 'by_combination',
                matched_customer = x.customer_id
FROM (SELECT payment_id, sum(applied) AS applied, min(customer_id) AS customer_id
      FROM settling GROUP BY payment_id) AS x
WHERE pays.payment_id = x.payment_id;

-- What a payment has left is unapplied cash, on its customer (or the one it matched).
INSERT INTO apps
SELECT payment_id, NULL, coalesce(customer_id, matched_customer), currency, cash, 0, 0,
       strategy, NULL
FROM pays WHERE cash > 0;

-- Dunning (dunning.yaml) ------------------------------------------------------------------

-- Overdue items, not disputed, of customers not excluded (intercompany, public sector),
-- with the level their days past due reach: after_days 7, 21, 35, 60 plus 3 days' grace.
CREATE TEMP TABLE overdue AS
SELECT i.*, c.country, as_of() - i.due_date AS days,
       CASE WHEN as_of() - i.due_date >= 63 THEN 4 WHEN as_of() - i.due_date >= 38 THEN 3
            WHEN as_of() - i.due_date >= 24 THEN 2 WHEN as_of() - i.due_date >= 10 THEN 1
            ELSE 0 END AS target
FROM items AS i JOIN customers AS c ON c.customer_id = i.customer_id
WHERE i.open_amount > 0 AND i.due_date < as_of() AND NOT i.disputed
  AND NOT coalesce(c.segment IN ('intercompany', 'public_sector'), false);

-- A customer is dunned when its overdue total is at least 25.00 EUR and its last notice
-- at least 7 days ago; its items rise one level at most. One notice per customer, level
-- and currency; the fee on its first row (earliest due, then invoice), interest per item:
-- simple interest at 10.27% a year from the due date, act/365 (act/360 at level 4).
CREATE TEMP TABLE notices AS
WITH gate AS (
  SELECT o.customer_id, sum(CAST(o.open_amount AS DECIMAL(38,2)) * r.rate) AS overdue
  FROM overdue AS o JOIN rates AS r ON r.currency = o.currency
  GROUP BY o.customer_id
), last_notice AS (
  SELECT customer_id, max(last_dunned_on) AS last_dunned_on FROM items GROUP BY customer_id
), rising AS (
  SELECT o.*, least(o.target, o.dunning_level + 1) AS level
  FROM overdue AS o
  JOIN gate AS g ON g.customer_id = o.customer_id
  JOIN last_notice AS n ON n.customer_id = o.customer_id
  WHERE least(o.target, o.dunning_level + 1) > o.dunning_level AND g.overdue >= 25
    AND (n.last_dunned_on IS NULL OR as_of() - n.last_dunned_on >= 7)
), numbered_rows AS (
  SELECT *, 'DN-' || strftime(as_of(), '%Y%m%d') || '-' || customer_id || '-' || level
              || '-' || currency AS notice_id,
         row_number() OVER notice AS row_in_notice,
         sum(CASE WHEN item_type IN ('invoice', 'opening') THEN open_amount ELSE 0 END)
           OVER (PARTITION BY customer_id, level, currency) AS amount_dunned
  FROM rising
  WINDOW notice AS (PARTITION BY customer_id, level, currency ORDER BY due_date, invoice_id)
)
SELECT notice_id, customer_id, invoice_id, item_type, currency, level, days AS days_overdue,
       open_amount AS amount_open,
       CAST(CASE WHEN row_in_notice > 1 OR amount_dunned <= 0 THEN 0
                 WHEN level = 2 THEN 5.00
                 WHEN level = 3 THEN least(round(CAST(amount_dunned AS DECIMAL(38,2)) * 0.01,
                                                 2), 40.00)
                 ELSE 0 END AS DECIMAL(18,2)) AS fee_amount,
       CAST(CASE WHEN level >= 2 AND item_type IN ('invoice', 'opening') AND days > 0
                 THEN div_half_up(CAST(CAST(open_amount AS DECIMAL(38,2)) * 0.1027 * days
                                       * 1000000 AS HUGEINT),
                                  CASE WHEN level = 4 THEN 360 ELSE 365 END * 10000) * 0.01
                 ELSE 0 END AS DECIMAL(18,2)) AS interest_amount,
       CASE level WHEN 1 THEN 'email' WHEN 4 THEN 'collection_agency' ELSE 'letter' END
         AS action,
       CASE level WHEN 1 THEN 'sy_reminder_' || country WHEN 2 THEN 'sy_letter_' || country
                  WHEN 3 THEN 'sy_final_' || country ELSE 'sy_agency' END AS template,
       row_in_notice
FROM numbered_rows;

-- Fees and interest become open items due tonight; the dunned items take their level.
CREATE TEMP TABLE charges AS
SELECT notice_id || '-FEE' AS invoice_id, customer_id, 'fee' AS item_type, currency,
       fee_amount AS amount, notice_id
FROM notices WHERE fee_amount > 0
UNION ALL
SELECT invoice_id || '-INT-' || strftime(as_of(), '%Y%m%d'), customer_id, 'interest',
       currency, interest_amount, notice_id
FROM notices WHERE interest_amount > 0;

UPDATE items SET dunning_level = n.level, last_dunned_on = as_of()
FROM notices AS n WHERE items.invoice_id = n.invoice_id;

INSERT INTO items (invoice_id, customer_id, item_type, invoice_date, due_date, currency,
                   amount_original, dunning_level, last_dunned_on, open_amount, ref_key,
                   disputed, discount, discount_until)
SELECT invoice_id, customer_id, item_type, as_of(), as_of(), currency, amount, 0, NULL,
       amount, upper(regexp_replace(invoice_id, '[^A-Za-z0-9]', '', 'g')), false, 0, as_of()
FROM charges;

-- Credit (credit.yaml) --------------------------------------------------------------------

-- Exposure: open items, open orders, less unapplied cash, in EUR at the night's rates,
-- rounded once. The limit: the override of K00000001 (valid until 2026-03-03), else the
-- first limit rule that holds, else 40,000. A customer with an open, undisputed item at
-- dunning level 3 or more (final notice, collection agency: credit_hold) is held; else
-- utilization >= 100% holds and >= 80% warns.
CREATE TEMP TABLE credit_decisions AS
WITH parts AS (
  SELECT customer_id, currency, open_amount AS amount FROM items WHERE open_amount <> 0
  UNION ALL
  SELECT customer_id, currency, amount FROM open_orders
  UNION ALL
  SELECT coalesce(customer_id, matched_customer), currency, -cash FROM pays WHERE cash > 0
), exposure AS (
  SELECT c.customer_id, c.segment, c.country,
         CAST(round(coalesce(sum(CAST(p.amount AS DECIMAL(38,2)) * r.rate), 0), 2)
              AS DECIMAL(18,2)) AS exposure
  FROM customers AS c
  LEFT JOIN parts AS p ON p.customer_id = c.customer_id
  LEFT JOIN rates AS r ON r.currency = p.currency
  GROUP BY c.customer_id, c.segment, c.country
), held AS (
  SELECT DISTINCT customer_id FROM items
  WHERE open_amount > 0 AND NOT disputed AND dunning_level >= 3
), limited AS (
  SELECT e.*, CAST(CASE
           WHEN e.customer_id = 'K00000001' AND as_of() <= DATE '2026-03-03' THEN 150000
           WHEN e.segment = 'strategic' THEN 250000
           WHEN e.segment = 'consumer' THEN 3000
           WHEN e.segment IN ('new', 'small') THEN 15000
           WHEN NOT in_eu(e.country) THEN 15000
           ELSE 40000 END AS DECIMAL(18,2)) AS credit_limit,
         e.customer_id IN (SELECT customer_id FROM held) AS dunning_hold
  FROM exposure AS e
)
SELECT customer_id, exposure, credit_limit,
       CAST(div_half_up(CAST(exposure * 100 AS HUGEINT) * 10000,
                        CAST(credit_limit * 100 AS HUGEINT)) * 0.0001 AS DECIMAL(18,4))
         AS utilization,
       CASE WHEN dunning_hold OR exposure >= credit_limit THEN 'hold'
            WHEN exposure >= 0.80 * credit_limit THEN 'warn' ELSE 'ok' END AS decision
FROM limited;

-- Journal entries (client.yaml: accounts) ---------------------------------------------------

-- Invoices: Dr AR (gross) / Cr revenue by product (net) / Cr tax payable by tax code;
-- a credit note the other way round. Payments, one entry each: Dr cash (the amount); per
-- item Cr AR (applied + written off + discount), Dr write-off, Dr discount; Cr unapplied
-- cash (the rest). Dunning charges: Dr AR / Cr dunning fees or interest income. Revenue
-- has a line per product group of accounts.revenue (BK-* and FD-* both book to 8300, on
-- lines of their own), tax a line per tax code.
CREATE TEMP TABLE journal_entries AS
WITH revenue AS (
  SELECT customer_id, currency, po_key, product_group, sum(net) AS net
  FROM (SELECT *, CASE WHEN product_code LIKE 'BK-%' THEN 'BK'
                       WHEN product_code LIKE 'FD-%' THEN 'FD'
                       WHEN product_code LIKE 'SV-%' THEN 'SV'
                       WHEN product_code LIKE 'SW-%' THEN 'SW'
                       WHEN product_code LIKE 'FR-%' THEN 'FR' ELSE '' END AS product_group
        FROM invoice_lines)
  GROUP BY customer_id, currency, po_key, product_group
), tax AS (
  SELECT customer_id, currency, po_key, tax_code, tax_account, tax_rule, sum(tax) AS tax
  FROM invoice_lines GROUP BY customer_id, currency, po_key, tax_code, tax_account, tax_rule
), sides AS (
  SELECT 'JE-' || invoice_id AS entry_id, 1 AS part, '' AS item, '1400' AS account,
         gross_amount AS amount, currency, customer_id, document_type,
         invoice_id AS document_id, 'receivable ' || invoice_id AS memo
  FROM invoices
  UNION ALL
  SELECT 'JE-' || v.invoice_id, 2, r.product_group,
         CASE r.product_group WHEN 'BK' THEN '8300' WHEN 'FD' THEN '8300'
                              WHEN 'SV' THEN '8338' WHEN 'SW' THEN '8339'
                              WHEN 'FR' THEN '8607' ELSE '8400' END,
         -r.net, v.currency, v.customer_id, v.document_type, v.invoice_id,
         'revenue ' || v.invoice_id
  FROM revenue AS r
  JOIN invoices AS v ON v.customer_id = r.customer_id AND v.currency = r.currency
                    AND v.po_key = r.po_key
  UNION ALL
  SELECT 'JE-' || v.invoice_id, 3, t.tax_rule, t.tax_account, -t.tax, v.currency,
         v.customer_id, v.document_type, v.invoice_id, 'tax ' || t.tax_code || ' ' || v.invoice_id
  FROM tax AS t
  JOIN invoices AS v ON v.customer_id = t.customer_id AND v.currency = t.currency
                    AND v.po_key = t.po_key
  UNION ALL
  SELECT 'JE-PAY-' || payment_id || '-' || strftime(as_of(), '%Y%m%d'), 1, '', '1200',
         amount, currency, coalesce(customer_id, matched_customer), 'payment', payment_id,
         'cash received ' || payment_id
  FROM pays
  UNION ALL
  SELECT 'JE-PAY-' || a.payment_id || '-' || strftime(as_of(), '%Y%m%d'), s.part,
         a.invoice_id, s.account, s.amount, a.currency, a.customer_id, 'payment',
         a.payment_id, s.memo
  FROM apps AS a
  CROSS JOIN LATERAL (VALUES
      (2, '1400', -(a.applied + a.written_off + a.discount),
       CASE WHEN a.applied < 0 THEN 'credit note offset ' ELSE 'paid ' END || a.invoice_id),
      (3, '2400', a.written_off, 'written off ' || a.invoice_id),
      (4, '8736', a.discount, 'discount taken ' || a.invoice_id)) AS s(part, account, amount,
                                                                       memo)
  WHERE a.invoice_id IS NOT NULL
  UNION ALL
  SELECT 'JE-PAY-' || payment_id || '-' || strftime(as_of(), '%Y%m%d'), 5, '', '1590',
         -applied, currency, customer_id, 'payment', payment_id, 'unapplied ' || payment_id
  FROM apps WHERE invoice_id IS NULL
  UNION ALL
  SELECT 'JE-' || invoice_id, 1, '', '1400', amount, currency, customer_id, item_type,
         invoice_id, item_type || ' ' || notice_id
  FROM charges
  UNION ALL
  SELECT 'JE-' || invoice_id, 2, '', CASE item_type WHEN 'fee' THEN '2700' ELSE '2650' END,
         -amount, currency, customer_id, item_type, invoice_id, item_type || ' ' || notice_id
  FROM charges
)
SELECT entry_id, row_number() OVER (PARTITION BY entry_id ORDER BY part, account, item)
         AS line_no,
       as_of() AS entry_date, account,
       CAST(greatest(amount, 0) AS DECIMAL(18,2)) AS debit,
       CAST(greatest(-amount, 0) AS DECIMAL(18,2)) AS credit,
       currency, customer_id, document_type, document_id, memo
FROM sides WHERE amount <> 0;

-- Aging (client.yaml: aging_buckets) -------------------------------------------------------

-- Per customer and currency: open items by days past due (current, 1-30, 31-60, 61-90,
-- over 90), unapplied cash as a negative amount, and the total.
CREATE TEMP TABLE aging AS
WITH open_now AS (
  SELECT customer_id, currency, open_amount AS amount, as_of() - due_date AS days, 0 AS rest
  FROM items WHERE open_amount <> 0
  UNION ALL
  SELECT coalesce(customer_id, matched_customer), currency, 0, 0, -cash
  FROM pays WHERE cash > 0
)
SELECT customer_id, currency,
       CAST(sum(CASE WHEN days <= 0 THEN amount ELSE 0 END) AS DECIMAL(18,2)) AS current,
       CAST(sum(CASE WHEN days BETWEEN 1 AND 30 THEN amount ELSE 0 END) AS DECIMAL(18,2))
         AS d1_30,
       CAST(sum(CASE WHEN days BETWEEN 31 AND 60 THEN amount ELSE 0 END) AS DECIMAL(18,2))
         AS d31_60,
       CAST(sum(CASE WHEN days BETWEEN 61 AND 90 THEN amount ELSE 0 END) AS DECIMAL(18,2))
         AS d61_90,
       CAST(sum(CASE WHEN days > 90 THEN amount ELSE 0 END) AS DECIMAL(18,2)) AS over_90,
       CAST(sum(rest) AS DECIMAL(18,2)) AS unapplied,
       CAST(sum(amount) + sum(rest) AS DECIMAL(18,2)) AS total_open
FROM open_now
GROUP BY customer_id, currency;

-- Outputs ---------------------------------------------------------------------------------

COPY (SELECT invoice_id, document_type, customer_id, invoice_date, due_date, currency,
             net_amount, tax_amount, gross_amount, po_number
      FROM invoices ORDER BY document_type DESC, night_seq)
  TO '{out}/invoices.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT v.invoice_id, l.line_no, l.txn_id, t.product_code, t.description, t.quantity,
             t.unit_price, l.net AS net_amount, l.tax_code, l.tax_rate, l.tax AS tax_amount,
             CASE l.tax_code
               WHEN 'EXEMPT' THEN 'Tax-exempt supply, certificate ' || c.exemption_id
                                  || ' (§ 4 UStG).'
               WHEN 'EXPORT' THEN 'Tax-free export to ' || coalesce(t.ship_to_country, c.country)
                                  || ' (§ 4 No. 1a, § 6 UStG).'
               WHEN 'EU-RC' THEN 'Reverse charge: VAT to be accounted for by the recipient. '
                                 || 'VAT ID ' || c.vat_id
             END AS tax_note
      FROM invoice_lines AS l
      JOIN lines AS t ON t.txn_id = l.txn_id
      JOIN customers AS c ON c.customer_id = l.customer_id
      JOIN invoices AS v ON v.customer_id = l.customer_id AND v.currency = l.currency
                        AND v.po_key = l.po_key
      ORDER BY v.document_type DESC, v.night_seq, l.line_no)
  TO '{out}/invoice_lines.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT payment_id, invoice_id, applied AS applied_amount,
             written_off AS written_off_amount, discount AS discount_amount, currency, strategy
      FROM apps ORDER BY payment_id, invoice_id IS NULL, due_date, invoice_id)
  TO '{out}/cash_applications.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT notice_id, customer_id, invoice_id, level, days_overdue, amount_open, fee_amount,
             interest_amount, action, template
      FROM notices ORDER BY notice_id, row_in_notice)
  TO '{out}/dunning_notices.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT * FROM credit_decisions ORDER BY customer_id)
  TO '{out}/credit_decisions.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT * FROM journal_entries ORDER BY entry_id, line_no)
  TO '{out}/journal_entries.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT * FROM aging ORDER BY customer_id NULLS LAST, currency)
  TO '{out}/aging.parquet' (FORMAT parquet, COMPRESSION zstd);
