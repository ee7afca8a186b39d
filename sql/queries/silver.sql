-- Queries of the silver step (streams/silver).

-- name: claim_bronze
SELECT id, event_hash, source, payload, received_at
FROM bronze.transactions
WHERE processed_at IS NULL
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

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

-- name: products_by_sku
SELECT sku, product_key FROM silver.products WHERE sku = ANY(%(skus)s::text[]);

-- name: products_by_name
SELECT DISTINCT ON (name_norm) name_norm, product_key
FROM silver.products
WHERE name_norm = ANY(%(norms)s::text[])
ORDER BY name_norm, product_key;

-- name: insert_transactions
INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, currency, device_id,
                                 customer_segment, payment_method, item_count, source, event_hash,
                                 bronze_id, received_at)
SELECT * FROM unnest(%(store_ids)s::text[], %(transaction_ids)s::text[], %(ts)s::timestamptz[],
                     %(totals)s::numeric[], %(currencies)s::text[], %(device_ids)s::text[],
                     %(segments)s::text[], %(payments)s::text[], %(item_counts)s::integer[],
                     %(sources)s::text[], %(event_hashes)s::char(64)[], %(bronze_ids)s::bigint[],
                     %(received_at)s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING txn_id, event_hash;

-- name: transactions_by_key
SELECT t.store_id, t.transaction_id, t.event_hash, t.txn_id
FROM silver.transactions t
JOIN unnest(%(store_ids)s::text[], %(transaction_ids)s::text[]) AS k (store_id, transaction_id)
  ON t.store_id = k.store_id AND t.transaction_id = k.transaction_id;

-- name: copy_line_items
COPY silver.line_items (txn_id, line_no, product_key, product_id, product_name, qty, unit_price,
                        line_amount, link_method, link_confidence) FROM STDIN;

-- name: insert_quarantine
INSERT INTO silver.quarantine (bronze_id, event_hash, store_id, transaction_id, reasons, details)
VALUES (%(bronze_id)s, %(event_hash)s, %(store_id)s, %(transaction_id)s, %(reasons)s, %(details)s)
ON CONFLICT (bronze_id) DO NOTHING;

-- name: mark_bronze_processed
UPDATE bronze.transactions SET processed_at = now() WHERE id = ANY(%(ids)s::bigint[]);

-- name: bump_silver_watermark
UPDATE ops.watermarks SET version = version + 1, updated_at = now() WHERE name = 'silver';
