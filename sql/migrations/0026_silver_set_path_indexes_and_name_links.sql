-- silver.transactions no longer indexes event_hash. Its unique constraint was implied by the unique key
-- (store_id, transaction_id): the event hash is the SHA-256 of the canonical transaction, store_id and
-- transaction_id included, so two rows with one hash always share their key and the key already refuses the
-- second. It was the costliest of the table's five indexes in the silver step (a random char(64) B-tree: every
-- insert first probes it for ON CONFLICT, then adds an entry to a random leaf page); EXPLAIN (ANALYZE, BUFFERS,
-- WAL) of the set path's claim statement, 2,000 transactions onto 40,000: the transaction insert 20 → 12 ms,
-- its WAL 1.61 → 1.24 MB. Nothing read silver by event hash except `scout uat`, which now finds its hashes in
-- bronze (unique there) and the silver row by the key. The other indexes pay for their readers: the key
-- (ON CONFLICT, displacement), ts (gold's per-day recompute, max(ts)), processed_at (the quality window, the
-- status page's 7-day views, gold freshness); each of those two cost under 1 ms per 2,000 inserts.
ALTER TABLE silver.transactions DROP CONSTRAINT transactions_event_hash_key;

-- Name links: a line without a SKU is linked by its printed name once, by the silver step's Python linking (an
-- exact normalised name in silver.products, else the catalogue's fuzzy and receipt reading); the link is kept
-- here by the raw name, so the set path links the next lines printing that name in SQL. Only names that linked
-- are kept (an unlinked name goes to Python again, so a product that arrives later links it at once). The
-- product-relink job deletes, when the catalogue changed, every entry a catalogue change could alter: all but
-- exact links to a product that still has that normalised name.
CREATE TABLE silver.name_links (
    name        text         PRIMARY KEY,
    name_norm   text         NOT NULL,
    product_key bigint       NOT NULL,
    method      text         NOT NULL CHECK (method IN ('name', 'fuzzy')),
    confidence  numeric(4,3) NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    created_at  timestamptz  NOT NULL DEFAULT now()
);
COMMENT ON TABLE silver.name_links IS 'Printed product names (lines without a SKU) already linked, for the set path';

GRANT SELECT, INSERT, UPDATE, DELETE ON silver.name_links TO scout_pipeline;
