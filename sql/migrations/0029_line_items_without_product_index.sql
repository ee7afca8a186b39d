-- silver.line_items no longer indexes product_key. Nothing reads line items by product: gold reads them by
-- transaction (the per-day aggregates and the incremental analytics of 0028 join them on txn_id) or scans them
-- whole, the quality checks and the catalogue's learning read them by txn_id, the relink job by link_method in
-- key order; EXPLAIN at 1,008,000 line items of the analytical gold views, the catalogue's learning and the
-- relink job's read used the primary key or a scan, never this index. Products are never deleted and the product
-- key is no foreign key (0022), so no change to a product looks its lines up either. Every line the silver step
-- wrote paid for it: the set path's claim statement (2,000 transactions, 6,372 lines onto 40,000 in silver, the
-- backend's CPU, medians of 11 runs in turn) 86.2 -> 81.9 and 82.2 -> 78.3 ms per batch, the line-item insert's
-- WAL records 19,193 -> 12,792.
DROP INDEX silver.line_items_product_idx;
