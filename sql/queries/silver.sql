-- Queries of the silver step (streams/silver).

-- name: claim_bronze
-- Claim queued bronze rows and take them off the queue (the delete rolls back with the batch if it fails; the
-- bronze rows themselves are only read), and write the plain ones to silver in the same statement: the set path.
-- A row is plain when its payload certainly meets the contract in the spelling the bronze consumer writes
-- (canonical JSON: money as "12.34" strings, ts as UTC "…Z", no nulls, only known keys; each check below is
-- stricter than scout.contract, never looser) and every line carries a SKU silver already knows (a product's or
-- an alias's) or, without a SKU, a printed name silver already linked (silver.name_links, filled by the row-by-row
-- path's linking). Plain rows become transactions (in arrival order: among versions of one transaction the first
-- received wins) and line items (jsonb_array_elements … WITH ORDINALITY). Every other row comes back with its
-- payload for the row-by-row path: rows not plain (pydantic words every invalid_payload reason), new SKUs (they
-- are linked in Python), versions refused by ON CONFLICT (replays, conflicts, displacements). Casts only run
-- inside a CASE whose condition proved them safe, so no payload can fail the statement. The regular expressions
-- have no bounded repeats ('{1,64}'): PostgreSQL runs those about ten times slower.
-- %(set_path)s false: no row is plain (the row-by-row path for all, as when a poison row is isolated).
WITH claimed AS (
    DELETE FROM bronze.pending
    WHERE bronze_id IN (SELECT bronze_id FROM bronze.pending ORDER BY bronze_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING bronze_id, received_at
),
claimed_rows AS MATERIALIZED (
    SELECT b.id, b.event_hash, b.source, b.payload, b.received_at, b.store_id, b.transaction_id,
           b.kafka_partition, b.kafka_offset,
           CASE WHEN NOT %(set_path)s OR jsonb_typeof(b.payload) <> 'object'
                     OR coalesce(jsonb_typeof(b.payload -> 'items'), '') <> 'array' THEN false
                ELSE coalesce(jsonb_array_length(b.payload -> 'items') BETWEEN 1 AND 500
                 AND (b.payload - ARRAY['transaction_id', 'store_id', 'ts', 'total_amount', 'currency', 'device_id',
                                        'customer_segment', 'payment_method', 'items']) = '{}'::jsonb
                 AND jsonb_typeof(b.payload -> 'transaction_id') = 'string'
                 AND char_length(b.payload ->> 'transaction_id') BETWEEN 1 AND 64
                 AND b.payload ->> 'transaction_id' !~ '[\x01-\x1f]'
                 AND jsonb_typeof(b.payload -> 'store_id') = 'string'
                 AND char_length(b.payload ->> 'store_id') BETWEEN 1 AND 64
                 AND b.payload ->> 'store_id' !~ '[\x01-\x1f]'
                 AND jsonb_typeof(b.payload -> 'ts') = 'string'
                 AND b.payload ->> 'ts'
                     ~ '^[1-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?Z$'
                 AND char_length(b.payload ->> 'ts') <= 27  -- at most microseconds
                 AND pg_input_is_valid(b.payload ->> 'ts', 'timestamptz')
                 AND jsonb_typeof(b.payload -> 'total_amount') = 'string'
                 AND b.payload ->> 'total_amount' ~ '^-?(0|[1-9][0-9]*)\.[0-9][0-9]$'
                 AND char_length(ltrim(b.payload ->> 'total_amount', '-')) <= 13
                 AND (NOT b.payload ? 'currency' OR (jsonb_typeof(b.payload -> 'currency') = 'string'
                                                     AND b.payload ->> 'currency' ~ '^[A-Z][A-Z][A-Z]$'))
                 AND (NOT b.payload ? 'device_id' OR (jsonb_typeof(b.payload -> 'device_id') = 'string'
                                                      AND char_length(b.payload ->> 'device_id') BETWEEN 1 AND 64
                                                      AND b.payload ->> 'device_id' !~ '[\x01-\x1f]'))
                 AND (NOT b.payload ? 'customer_segment'
                      OR (jsonb_typeof(b.payload -> 'customer_segment') = 'string'
                          AND char_length(b.payload ->> 'customer_segment') BETWEEN 1 AND 200))
                 AND (NOT b.payload ? 'payment_method'
                      OR (jsonb_typeof(b.payload -> 'payment_method') = 'string'
                          AND char_length(b.payload ->> 'payment_method') BETWEEN 1 AND 200)), false)
           END AS head_plain
    -- One index probe per row in its day's partition: the queue entry carries received_at (the partition key),
    -- and the LATERAL ... LIMIT 1 keeps a nested loop, whose run-time pruning skips every other day (a plain
    -- join on id would read every partition).
    FROM claimed
    CROSS JOIN LATERAL (
        SELECT * FROM bronze.transactions t
        WHERE t.id = claimed.bronze_id AND t.received_at = claimed.received_at
        LIMIT 1
    ) AS b
),
lines AS MATERIALIZED (
    SELECT r.id AS bronze_id, i.line_no::integer AS line_no, i.item,
           coalesce(p.product_key, a.product_key, n.product_key) AS product_key,
           CASE WHEN p.product_key IS NOT NULL THEN 'sku' WHEN a.product_key IS NOT NULL THEN 'alias'
                ELSE n.method END AS link_method,
           CASE WHEN p.product_key IS NOT NULL THEN 1.000 ELSE coalesce(a.confidence, n.confidence) END
               AS link_confidence,
           CASE WHEN jsonb_typeof(i.item) <> 'object' THEN false
                WHEN coalesce(jsonb_typeof(i.item -> 'qty'), '') <> 'number' THEN false
                -- a JSON number is an integer when its numeric has no decimals (no regular expression needed)
                WHEN scale((i.item -> 'qty')::numeric) = 0 AND abs((i.item -> 'qty')::numeric) <= 1000000
                     AND jsonb_typeof(i.item -> 'unit_price') = 'string'
                     AND i.item ->> 'unit_price' ~ '^-?(0|[1-9][0-9]*)\.[0-9][0-9]$'
                     AND char_length(ltrim(i.item ->> 'unit_price', '-')) <= 13
                THEN (i.item ? 'line_amount'  -- an amount silver computes must fit numeric(12,2)
                      OR abs((i.item ->> 'qty')::integer * (i.item ->> 'unit_price')::numeric) < 10000000000)
                 AND (i.item - ARRAY['product_id', 'product_name', 'brand', 'category', 'qty', 'unit_price',
                                     'line_amount']) = '{}'::jsonb
                 AND CASE WHEN i.item ? 'product_id'
                          THEN jsonb_typeof(i.item -> 'product_id') = 'string'
                               AND char_length(i.item ->> 'product_id') BETWEEN 1 AND 64
                               AND i.item ->> 'product_id' !~ '[\x01-\x1f]'
                          ELSE i.item ? 'product_name' END  -- linked by its name (below)
                 AND (NOT i.item ? 'product_name' OR (jsonb_typeof(i.item -> 'product_name') = 'string'
                                                      AND char_length(i.item ->> 'product_name') BETWEEN 1 AND 200))
                 AND (NOT i.item ? 'brand' OR (jsonb_typeof(i.item -> 'brand') = 'string'
                                               AND char_length(i.item ->> 'brand') BETWEEN 1 AND 200))
                 AND (NOT i.item ? 'category' OR (jsonb_typeof(i.item -> 'category') = 'string'
                                                  AND char_length(i.item ->> 'category') BETWEEN 1 AND 200))
                 AND (NOT i.item ? 'line_amount'
                      OR (jsonb_typeof(i.item -> 'line_amount') = 'string'
                          AND i.item ->> 'line_amount' ~ '^-?(0|[1-9][0-9]*)\.[0-9][0-9]$'
                          AND char_length(ltrim(i.item ->> 'line_amount', '-')) <= 13))
                ELSE false
           END AS line_plain
    FROM claimed_rows r
    CROSS JOIN LATERAL jsonb_array_elements(r.payload -> 'items') WITH ORDINALITY AS i (item, line_no)
    LEFT JOIN silver.products p ON p.sku = i.item ->> 'product_id'
    LEFT JOIN silver.product_aliases a ON a.sku = i.item ->> 'product_id' AND p.product_key IS NULL
    LEFT JOIN silver.name_links n ON n.name = i.item ->> 'product_name' AND NOT i.item ? 'product_id'
    WHERE r.head_plain
),
plain AS (
    SELECT bronze_id, count(*)::integer AS item_count,
           count(*) FILTER (WHERE link_method = 'sku')::integer AS sku_lines,
           count(*) FILTER (WHERE link_method = 'name')::integer AS name_lines,
           count(*) FILTER (WHERE link_method = 'fuzzy')::integer AS fuzzy_lines
    FROM lines GROUP BY bronze_id
    HAVING bool_and(coalesce(line_plain, false) AND product_key IS NOT NULL)  -- a missing field reads NULL
),
new_stores AS (
    INSERT INTO silver.stores (store_id)
    SELECT DISTINCT r.payload ->> 'store_id' FROM claimed_rows r JOIN plain ON plain.bronze_id = r.id ORDER BY 1
    ON CONFLICT (store_id) DO NOTHING
),
inserted AS (
    INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, currency, device_id,
                                     customer_segment, payment_method, item_count, source, event_hash,
                                     bronze_id, received_at)
    SELECT r.payload ->> 'store_id', r.payload ->> 'transaction_id', (r.payload ->> 'ts')::timestamptz,
           (r.payload ->> 'total_amount')::numeric(12,2), r.payload ->> 'currency', r.payload ->> 'device_id',
           r.payload ->> 'customer_segment', r.payload ->> 'payment_method', plain.item_count, r.source,
           r.event_hash, r.id, r.received_at
    FROM claimed_rows r JOIN plain ON plain.bronze_id = r.id
    ORDER BY r.kafka_partition, r.kafka_offset
    ON CONFLICT DO NOTHING
    RETURNING txn_id, bronze_id, extract(epoch FROM processed_at - received_at)::double precision AS latency
),
new_lines AS (
    INSERT INTO silver.line_items (txn_id, line_no, product_key, product_id, product_name, qty, unit_price,
                                   line_amount, link_method, link_confidence)
    SELECT i.txn_id, l.line_no, l.product_key, l.item ->> 'product_id', l.item ->> 'product_name',
           (l.item ->> 'qty')::integer, (l.item ->> 'unit_price')::numeric(12,2),
           coalesce((l.item ->> 'line_amount')::numeric,
                    (l.item ->> 'qty')::integer * (l.item ->> 'unit_price')::numeric)::numeric(12,2),
           l.link_method, l.link_confidence
    FROM inserted i JOIN lines l ON l.bronze_id = i.bronze_id
)
SELECT r.id, r.event_hash, r.source, CASE WHEN i.txn_id IS NULL THEN r.payload::text END AS payload,
       r.received_at, r.store_id, r.transaction_id, r.kafka_partition, r.kafka_offset,
       i.txn_id, i.latency, plain.item_count, plain.sku_lines, plain.name_lines, plain.fuzzy_lines
FROM claimed_rows r
LEFT JOIN inserted i ON i.bronze_id = r.id
LEFT JOIN plain ON plain.bronze_id = r.id;

-- name: judge_set_path
-- The transactions the set path wrote that break a stream rule, judged by the rules' own batch SQL
-- (quality.sql, rule_<name>; the placeholder in braces below is their union, over these transactions, filled by
-- streams.silver.plan.judge_sql): taken out of silver again (their
-- lines cascade) and returned with their payloads for the row-by-row path, which quarantines them or records
-- their warnings with the Python verdict's words. A key is store_id/transaction_id.
-- The batch is built by the block the quality suite's window is built by (quality.sql, silver_with_line_facts,
-- filled in braces below): each transaction's lines are read once for every line rule.
WITH batch AS MATERIALIZED ({silver_with_line_facts}
                            WHERE t.txn_id = ANY(%(txn_ids)s::bigint[])),
flagged AS (
    DELETE FROM silver.transactions t
    USING batch
    WHERE t.txn_id = batch.txn_id
      AND batch.store_id || '/' || batch.transaction_id IN (SELECT key FROM ({rules}) AS broken)
    RETURNING t.txn_id, t.bronze_id, t.received_at
)
SELECT f.txn_id, b.id, b.event_hash, b.source, b.payload::text, b.received_at, b.store_id, b.transaction_id,
       b.kafka_partition, b.kafka_offset
FROM flagged f
CROSS JOIN LATERAL (  -- the bronze row in its day's partition only (silver keeps bronze's received_at)
    SELECT * FROM bronze.transactions x WHERE x.id = f.bronze_id AND x.received_at = f.received_at LIMIT 1
) AS b;

-- name: upsert_stores
INSERT INTO silver.stores (store_id)
SELECT s FROM unnest(%(store_ids)s::text[]) AS s ORDER BY s
ON CONFLICT (store_id) DO NOTHING;

-- name: upsert_products_by_sku
INSERT INTO silver.products (sku, name, name_norm, brand, category)
SELECT sku, name, name_norm, brand, category
FROM unnest(%(skus)s::text[], %(names)s::text[], %(norms)s::text[], %(brands)s::text[],
            %(categories)s::text[]) AS p (sku, name, name_norm, brand, category)
ORDER BY sku
ON CONFLICT (sku) DO NOTHING;

-- name: products_by_name
SELECT DISTINCT ON (name_norm) name_norm, product_key
FROM silver.products
WHERE name_norm = ANY(%(norms)s::text[])
ORDER BY name_norm, product_key;

-- name: silver_stage_create
CREATE TEMP TABLE IF NOT EXISTS silver_stage (
    store_id text, transaction_id text, ts timestamptz, total_amount numeric(12,2), currency text,
    device_id text, customer_segment text, payment_method text, item_count integer, source text,
    event_hash char(64), bronze_id bigint, received_at timestamptz, arrival integer
) ON COMMIT DELETE ROWS;

-- name: silver_stage_copy
COPY silver_stage (store_id, transaction_id, ts, total_amount, currency, device_id, customer_segment,
                   payment_method, item_count, source, event_hash, bronze_id, received_at, arrival) FROM STDIN;

-- name: insert_transactions_from_stage
-- Empties the stage, so that a second insert in the same database transaction starts clean.
WITH staged AS (DELETE FROM silver_stage RETURNING *)
INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, currency, device_id,
                                 customer_segment, payment_method, item_count, source, event_hash,
                                 bronze_id, received_at)
SELECT store_id, transaction_id, ts, total_amount, currency, device_id, customer_segment, payment_method,
       item_count, source, event_hash, bronze_id, received_at
FROM staged
ORDER BY arrival  -- the batch in arrival order: among versions of one transaction the first received wins
ON CONFLICT DO NOTHING
RETURNING txn_id, event_hash, extract(epoch FROM processed_at - received_at)::double precision;

-- name: transactions_by_key
-- The version in silver and where it arrived (topic partition and offset; -1 when its bronze row was purged,
-- which makes it the earlier one).
SELECT t.store_id, t.transaction_id, t.event_hash, t.txn_id,
       coalesce(b.kafka_partition, -1), coalesce(b.kafka_offset, -1)
FROM silver.transactions t
JOIN unnest(%(store_ids)s::text[], %(transaction_ids)s::text[]) AS k (store_id, transaction_id)
  ON t.store_id = k.store_id AND t.transaction_id = k.transaction_id
LEFT JOIN LATERAL (  -- the bronze row in its day's partition only (silver keeps bronze's received_at)
    SELECT x.kafka_partition, x.kafka_offset FROM bronze.transactions x
    WHERE x.id = t.bronze_id AND x.received_at = t.received_at LIMIT 1
) AS b ON true;

-- name: copy_line_items
COPY silver.line_items (txn_id, line_no, product_key, product_id, product_name, qty, unit_price,
                        line_amount, link_method, link_confidence) FROM STDIN;

-- name: insert_quarantine
INSERT INTO silver.quarantine (bronze_id, event_hash, store_id, transaction_id, reasons, details)
VALUES (%(bronze_id)s, %(event_hash)s, %(store_id)s, %(transaction_id)s, %(reasons)s, %(details)s)
ON CONFLICT (bronze_id) DO UPDATE  -- quarantined again after a replay: the latest reasons, open again
SET reasons = EXCLUDED.reasons, details = EXCLUDED.details, created_at = now(), replayed_at = NULL;

-- name: bump_silver_watermark
UPDATE ops.watermarks SET version = version + 1, updated_at = now() WHERE name = 'silver';

-- name: products_since
SELECT product_key, sku, name FROM silver.products WHERE product_key > %(after)s ORDER BY product_key;

-- name: import_products
INSERT INTO silver.products (sku, name, name_norm, brand, category)
SELECT sku, name, name_norm, brand, category
FROM unnest(%(skus)s::text[], %(names)s::text[], %(norms)s::text[], %(brands)s::text[],
            %(categories)s::text[]) AS p (sku, name, name_norm, brand, category)
ORDER BY sku
ON CONFLICT (sku) DO UPDATE
SET name = EXCLUDED.name, name_norm = EXCLUDED.name_norm,
    brand = coalesce(EXCLUDED.brand, silver.products.brand),
    category = coalesce(EXCLUDED.category, silver.products.category)
RETURNING (xmax = 0) AS inserted;

-- name: unlinked_lines
SELECT l.txn_id, l.line_no, l.product_name
FROM silver.line_items l
WHERE l.link_method = 'unlinked' AND l.product_name IS NOT NULL
  AND (l.txn_id, l.line_no) > (%(after_txn)s, %(after_line)s)
ORDER BY l.txn_id, l.line_no
LIMIT %(limit)s;

-- name: relink_line
UPDATE silver.line_items
SET product_key = %(product_key)s, link_method = %(method)s, link_confidence = %(confidence)s
WHERE txn_id = %(txn_id)s AND line_no = %(line_no)s AND link_method = 'unlinked';

-- name: products_fingerprint
SELECT count(*) AS products, coalesce(max(product_key), 0) AS max_key FROM silver.products;

-- name: quarantine_list
SELECT id, created_at, reasons, store_id, transaction_id, bronze_id, details, replayed_at
FROM silver.quarantine
WHERE (%(reason)s::text IS NULL OR %(reason)s = ANY(reasons))
  AND (%(include_replayed)s OR replayed_at IS NULL)
ORDER BY id
LIMIT %(limit)s;

-- name: quarantine_counts
SELECT reason, count(*) AS open
FROM silver.quarantine, unnest(reasons) AS reason
WHERE replayed_at IS NULL
GROUP BY reason ORDER BY reason;

-- name: quarantine_replay
WITH picked AS (
    UPDATE silver.quarantine SET replayed_at = now()
    WHERE replayed_at IS NULL
      AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
      AND (%(reason)s::text IS NULL OR %(reason)s = ANY(reasons))
    RETURNING bronze_id
)
INSERT INTO bronze.pending (bronze_id, received_at)
SELECT b.id, b.received_at FROM picked JOIN bronze.transactions b ON b.id = picked.bronze_id
ON CONFLICT (bronze_id) DO NOTHING
RETURNING bronze_id;

-- name: displace_transactions
DELETE FROM silver.transactions WHERE txn_id = ANY(%(txn_ids)s::bigint[])
RETURNING txn_id, bronze_id, event_hash, store_id, transaction_id;

-- name: known_skus
-- Each SKU's product: its own (method sku), else the product its alias points to (method alias).
SELECT p.sku, p.product_key, 'sku' AS method, 1.000 AS confidence
FROM silver.products p WHERE p.sku = ANY(%(skus)s::text[])
UNION ALL
SELECT a.sku, a.product_key, 'alias', a.confidence
FROM silver.product_aliases a
WHERE a.sku = ANY(%(skus)s::text[]) AND NOT EXISTS (SELECT 1 FROM silver.products p WHERE p.sku = a.sku);

-- name: insert_name_links
-- Printed names the row-by-row path just linked: the set path links the next lines printing them (claim_bronze).
INSERT INTO silver.name_links (name, name_norm, product_key, method, confidence)
SELECT * FROM unnest(%(names)s::text[], %(norms)s::text[], %(keys)s::bigint[], %(methods)s::text[],
                     %(confidences)s::numeric[])
ORDER BY 1
ON CONFLICT (name) DO NOTHING;

-- name: invalidate_name_links
-- What a catalogue change could alter (the product-relink job, a catalogue import): a fuzzy or receipt reading
-- (a closer product may have arrived), an exact link whose product no longer has that normalised name.
DELETE FROM silver.name_links n
WHERE n.method <> 'name'
   OR NOT EXISTS (SELECT 1 FROM silver.products p WHERE p.product_key = n.product_key AND p.name_norm = n.name_norm)
RETURNING n.name;

-- name: lock_new_skus
-- One worker at a time decides what an unknown SKU is (a product or an alias); in SKU order, so no deadlock.
SELECT pg_advisory_xact_lock(hashtextextended('silver.sku:' || s, 0))
FROM (SELECT s FROM unnest(%(skus)s::text[]) AS s ORDER BY s) AS sorted;

-- name: insert_product_aliases
INSERT INTO silver.product_aliases (sku, product_key, name, method, confidence)
SELECT * FROM unnest(%(skus)s::text[], %(keys)s::bigint[], %(names)s::text[], %(methods)s::text[],
                     %(confidences)s::numeric[])
ON CONFLICT (sku) DO NOTHING;

-- name: sku_confirmed_names
-- Names printed on recent lines whose SKU is a catalogue product's, where they differ from its name: the
-- catalogue learns receipt words from them ("XMAS" for "CHRISTMAS").
SELECT DISTINCT r.product_name, r.product_key
FROM (SELECT product_name, product_key FROM silver.line_items
      WHERE link_method = 'sku' AND product_name IS NOT NULL
      ORDER BY txn_id DESC LIMIT %(limit)s) AS r
JOIN silver.products p ON p.product_key = r.product_key
WHERE r.product_name <> p.name;
