-- Gold at tens of millions of line items: no gold view reads all of silver or all of an aggregate's days any more
-- after a batch. Three kinds of state are added under agg, each kept by the same triggers on silver as 0017:
--
-- * Totals over every day, kept by difference: when a day of store_hour_day, product_day or basket_pairs_day is
--   recomputed, its old rows are subtracted from the totals table and its new rows added (agg.fold_totals).
--   gold.sales_by_hour reads agg.store_hour, gold.dashboard_summary's product lines read agg.product_total.
-- * Product associations as itemset counts per day (agg.basket_pairs_day, a queued day like the others) and in
--   total (agg.basket_pairs): (k, k) counts the baskets holding product k, (k1, k2) with k1 < k2 the baskets
--   holding both, and (0, 0) every basket (a transaction with at least one linked product). The minimum
--   support then only reads the pairs above it, through an index on the count.
-- * Next-order predictions per store (agg.store_orders): the order count, the sum and count of the intervals
--   between consecutive orders, the backtest's tested intervals and hits, and the last order. Triggers queue
--   the stores a statement touched in agg.dirty_stores; the refresh extends a store from its last order when
--   every new order comes after it (the usual case: the backtest of an interval only reads the intervals
--   before it), and recomputes the store from its first order when an order was removed, moved, or arrived
--   late. The last five orders and their products are read again for every queued store (an index on
--   (store_id, ts, txn_id) makes that five index entries).
--
-- Results are the same as the full scans they replace (tests/integration/test_gold_incremental.py compares them
-- with the original queries, kept in sql/queries/gold.sql, after late and displaced transactions).

CREATE INDEX transactions_store_ts_idx ON silver.transactions (store_id, ts, txn_id);

CREATE TABLE agg.store_hour (
    store_id    text    NOT NULL,
    hour_of_day integer NOT NULL,
    orders      bigint  NOT NULL,
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL,
    active_days bigint  NOT NULL,
    PRIMARY KEY (store_id, hour_of_day)
);
CREATE INDEX store_hour_emptied_idx ON agg.store_hour (store_id) WHERE active_days = 0;

CREATE TABLE agg.product_total (
    product_key bigint  PRIMARY KEY,
    orders      bigint  NOT NULL,
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL,
    active_days bigint  NOT NULL
);
CREATE INDEX product_total_emptied_idx ON agg.product_total (product_key) WHERE active_days = 0;

CREATE TABLE agg.basket_pairs_day (
    day     date   NOT NULL,
    k1      bigint NOT NULL,
    k2      bigint NOT NULL,
    baskets bigint NOT NULL,
    PRIMARY KEY (day, k1, k2)
);

CREATE TABLE agg.basket_pairs (
    k1          bigint NOT NULL,
    k2          bigint NOT NULL,
    baskets     bigint NOT NULL,
    active_days bigint NOT NULL,
    PRIMARY KEY (k1, k2)
);
CREATE INDEX basket_pairs_baskets_idx ON agg.basket_pairs (baskets);
CREATE INDEX basket_pairs_emptied_idx ON agg.basket_pairs (k1) WHERE active_days = 0;

-- Work queue of next_order_predictions: a store to bring up to date. rebuild: an order was removed or moved;
-- ts/txn_id: the earliest order a statement added (NULL when only lines or amounts changed).
CREATE TABLE agg.dirty_stores (
    store_id text        NOT NULL,
    rebuild  boolean     NOT NULL,
    ts       timestamptz,
    txn_id   bigint
);

CREATE TABLE agg.store_orders (
    store_id          text        PRIMARY KEY,
    orders            bigint      NOT NULL,
    intervals         bigint      NOT NULL,
    interval_days_sum numeric     NOT NULL,
    tested            bigint      NOT NULL,
    hits              bigint      NOT NULL,
    last_order_at     timestamptz NOT NULL,
    last_txn_id       bigint      NOT NULL
);

CREATE TABLE agg.store_recent (
    store_id              text    PRIMARY KEY,
    recent_orders         bigint  NOT NULL,
    expected_basket_value numeric NOT NULL
);

CREATE TABLE agg.store_recent_items (
    store_id    text   NOT NULL,
    product_key bigint NOT NULL,
    orders_with bigint NOT NULL,
    qty         bigint NOT NULL,
    PRIMARY KEY (store_id, product_key)
);

-- Add (direction 1) or subtract (-1) the rows of the given days of a per-day aggregate to its totals table;
-- days NULL: empty the totals and add every day (after a full recompute). Totals that reach zero days go.
CREATE FUNCTION agg.fold_totals(target_name text, days date[], direction integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    totals text;
    fold text;
    which text := CASE WHEN days IS NULL THEN 'true' ELSE 'day = ANY($1)' END;
BEGIN
    totals := CASE target_name WHEN 'store_hour_day' THEN 'store_hour' WHEN 'product_day' THEN 'product_total'
                               WHEN 'basket_pairs_day' THEN 'basket_pairs' END;
    IF totals IS NULL THEN
        RETURN;
    END IF;
    fold := CASE target_name
        WHEN 'store_hour_day' THEN $q$
            INSERT INTO agg.store_hour AS h (store_id, hour_of_day, orders, units, revenue, active_days)
            SELECT store_id, hour_of_day, $2 * sum(orders), $2 * sum(units), $2 * sum(revenue), $2 * count(*)
            FROM agg.store_hour_day WHERE %1$s GROUP BY 1, 2
            ON CONFLICT (store_id, hour_of_day) DO UPDATE
            SET orders = h.orders + excluded.orders, units = h.units + excluded.units,
                revenue = h.revenue + excluded.revenue, active_days = h.active_days + excluded.active_days $q$
        WHEN 'product_day' THEN $q$
            INSERT INTO agg.product_total AS p (product_key, orders, units, revenue, active_days)
            SELECT product_key, $2 * sum(orders), $2 * sum(units), $2 * sum(revenue), $2 * count(*)
            FROM agg.product_day WHERE %1$s GROUP BY 1
            ON CONFLICT (product_key) DO UPDATE
            SET orders = p.orders + excluded.orders, units = p.units + excluded.units,
                revenue = p.revenue + excluded.revenue, active_days = p.active_days + excluded.active_days $q$
        WHEN 'basket_pairs_day' THEN $q$
            INSERT INTO agg.basket_pairs AS b (k1, k2, baskets, active_days)
            SELECT k1, k2, $2 * sum(baskets), $2 * count(*)
            FROM agg.basket_pairs_day WHERE %1$s GROUP BY 1, 2
            ON CONFLICT (k1, k2) DO UPDATE
            SET baskets = b.baskets + excluded.baskets, active_days = b.active_days + excluded.active_days $q$
    END;
    IF days IS NULL THEN
        EXECUTE format('DELETE FROM agg.%I', totals);
    END IF;
    EXECUTE format(fold, which) USING days, direction;
    EXECUTE format('DELETE FROM agg.%I WHERE active_days = 0', totals);
END
$$;

-- Bring next_order_predictions' state up to date for the queued stores (all stores when full_rebuild).
-- Returns the number of stores read.
CREATE FUNCTION agg.refresh_store_orders(full_rebuild boolean) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stores text[];
BEGIN
    IF full_rebuild THEN
        DELETE FROM agg.dirty_stores;
        DELETE FROM agg.store_orders;
        DELETE FROM agg.store_recent;
        DELETE FROM agg.store_recent_items;
        SELECT array_agg(DISTINCT store_id) INTO stores FROM silver.transactions;
    ELSE
        -- Claim first (as the day queue): a store queued by a later commit is read on the next refresh.
        WITH claimed AS (DELETE FROM agg.dirty_stores RETURNING *),
        judged AS (
            SELECT c.store_id,
                   bool_or(c.rebuild) AS rebuild,
                   bool_and(c.ts IS NULL OR s.store_id IS NULL
                            OR (c.ts, c.txn_id) > (s.last_order_at, s.last_txn_id)) AS appended
            FROM claimed c
            LEFT JOIN agg.store_orders s USING (store_id)
            GROUP BY c.store_id
        ),
        -- An order at or before the last one counted may already be counted (committed before the last
        -- refresh read the store): it is new only when the store now has more orders up to that point.
        recount AS (
            DELETE FROM agg.store_orders s
            USING judged j
            WHERE s.store_id = j.store_id
              AND (j.rebuild
                   OR (NOT j.appended
                       AND s.orders <> (SELECT count(*) FROM silver.transactions t
                                        WHERE t.store_id = s.store_id AND t.ts <= s.last_order_at
                                          AND (t.ts, t.txn_id) <= (s.last_order_at, s.last_txn_id))))
            RETURNING s.store_id
        )
        SELECT array_agg(store_id) INTO stores FROM judged;
    END IF;
    IF stores IS NULL THEN
        RETURN 0;
    END IF;

    -- Extend each store from its last counted order (from its first order when it has no state).
    WITH base AS (
        SELECT d.store_id,
               coalesce(s.orders, 0)            AS orders,
               coalesce(s.intervals, 0)         AS intervals,
               coalesce(s.interval_days_sum, 0) AS interval_days_sum,
               coalesce(s.tested, 0)            AS tested,
               coalesce(s.hits, 0)              AS hits,
               s.last_order_at,
               coalesce(s.last_order_at, '-infinity') AS after_ts,
               coalesce(s.last_txn_id, 0)       AS after_txn
        FROM unnest(stores) AS d (store_id)
        LEFT JOIN agg.store_orders s USING (store_id)
    ),
    fresh AS (
        SELECT b.store_id, t.txn_id, t.ts,
               extract(epoch FROM t.ts - coalesce(lag(t.ts) OVER w, b.last_order_at)) / 86400 AS interval_days
        FROM base b
        CROSS JOIN LATERAL (SELECT t.txn_id, t.ts FROM silver.transactions t
                            WHERE t.store_id = b.store_id AND t.ts >= b.after_ts
                              AND (t.ts, t.txn_id) > (b.after_ts, b.after_txn)) t
        WINDOW w AS (PARTITION BY b.store_id ORDER BY t.ts, t.txn_id)
    ),
    scored AS (
        SELECT f.store_id, f.interval_days,
               b.interval_days_sum + coalesce(sum(f.interval_days) OVER w, 0) AS prior_sum,
               b.intervals + count(f.interval_days) OVER w                   AS prior_count
        FROM fresh f
        JOIN base b USING (store_id)
        WHERE f.interval_days IS NOT NULL
        WINDOW w AS (PARTITION BY f.store_id ORDER BY f.ts, f.txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ),
    judged AS (
        SELECT store_id, interval_days, CASE WHEN prior_count > 0 THEN prior_sum / prior_count END AS prior_mean
        FROM scored
    ),
    learned AS (
        SELECT store_id, count(*) AS intervals, sum(interval_days) AS interval_days_sum,
               count(prior_mean) AS tested,
               count(*) FILTER (WHERE abs(interval_days - prior_mean) <= greatest(1, 0.25 * prior_mean)) AS hits
        FROM judged
        GROUP BY store_id
    ),
    added AS (
        SELECT DISTINCT ON (store_id) store_id, ts AS last_order_at, txn_id AS last_txn_id,
               count(*) OVER (PARTITION BY store_id) AS orders
        FROM fresh
        ORDER BY store_id, ts DESC, txn_id DESC
    )
    INSERT INTO agg.store_orders AS s (store_id, orders, intervals, interval_days_sum, tested, hits, last_order_at,
                                       last_txn_id)
    SELECT a.store_id, b.orders + a.orders, b.intervals + coalesce(l.intervals, 0),
           b.interval_days_sum + coalesce(l.interval_days_sum, 0), b.tested + coalesce(l.tested, 0),
           b.hits + coalesce(l.hits, 0), a.last_order_at, a.last_txn_id
    FROM added a
    JOIN base b USING (store_id)
    LEFT JOIN learned l USING (store_id)
    ON CONFLICT (store_id) DO UPDATE
    SET orders = excluded.orders, intervals = excluded.intervals, interval_days_sum = excluded.interval_days_sum,
        tested = excluded.tested, hits = excluded.hits, last_order_at = excluded.last_order_at,
        last_txn_id = excluded.last_txn_id;

    -- The last five orders of every queued store, and the linked products in them.
    DELETE FROM agg.store_recent WHERE store_id = ANY(stores);
    DELETE FROM agg.store_recent_items WHERE store_id = ANY(stores);
    INSERT INTO agg.store_recent (store_id, recent_orders, expected_basket_value)
    SELECT d.store_id, count(*), round(avg(r.total_amount), 2)
    FROM unnest(stores) AS d (store_id)
    CROSS JOIN LATERAL (SELECT t.total_amount FROM silver.transactions t WHERE t.store_id = d.store_id
                        ORDER BY t.ts DESC, t.txn_id DESC LIMIT 5) r
    GROUP BY d.store_id;
    INSERT INTO agg.store_recent_items (store_id, product_key, orders_with, qty)
    SELECT d.store_id, l.product_key, count(DISTINCT r.txn_id), sum(l.qty)
    FROM unnest(stores) AS d (store_id)
    CROSS JOIN LATERAL (SELECT t.txn_id FROM silver.transactions t WHERE t.store_id = d.store_id
                        ORDER BY t.ts DESC, t.txn_id DESC LIMIT 5) r
    JOIN silver.line_items l ON l.txn_id = r.txn_id
    WHERE l.product_key IS NOT NULL
    GROUP BY d.store_id, l.product_key;
    RETURN cardinality(stores);
END
$$;

-- 0017's function with two more day aggregates (basket_pairs_day, and the totals folded around every recompute)
-- and the per-store one.
CREATE OR REPLACE FUNCTION ops.refresh_gold_aggregate(target_name text, full_rebuild boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $$
DECLARE
    compute text;
    days date[];
    recomputed integer;
BEGIN
    IF target_name = 'store_orders' THEN
        RETURN agg.refresh_store_orders(full_rebuild);
    END IF;
    compute := CASE target_name
        WHEN 'store_day' THEN $q$
            INSERT INTO agg.store_day (day, store_id, orders, line_items, revenue)
            SELECT (t.ts AT TIME ZONE 'UTC')::date, t.store_id, count(*), sum(t.item_count), sum(t.total_amount)
            FROM %1$s t
            GROUP BY 1, 2 $q$
        WHEN 'basket_day' THEN $q$
            INSERT INTO agg.basket_day (day, store_id, orders, units, lines, revenue, max_order_value)
            SELECT b.day, b.store_id, count(*), sum(b.units), sum(b.lines), sum(b.total_amount), max(b.total_amount)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, t.store_id, t.total_amount,
                         sum(l.qty) AS units, count(*) AS lines
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  GROUP BY t.txn_id, t.ts, t.store_id, t.total_amount) b
            GROUP BY 1, 2 $q$
        WHEN 'store_hour_day' THEN $q$
            INSERT INTO agg.store_hour_day (day, store_id, hour_of_day, orders, units, revenue)
            SELECT b.day, b.store_id, b.hour_of_day, count(*), sum(b.units), sum(b.total_amount)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, t.store_id,
                         extract(hour FROM t.ts AT TIME ZONE 'UTC')::integer AS hour_of_day, t.total_amount,
                         sum(l.qty) AS units
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  GROUP BY t.txn_id, t.ts, t.store_id, t.total_amount) b
            GROUP BY 1, 2, 3 $q$
        WHEN 'product_day' THEN $q$
            INSERT INTO agg.product_day (day, product_key, orders, units, revenue)
            SELECT o.day, o.product_key, count(*), sum(o.units), sum(o.revenue)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, l.product_key, l.txn_id,
                         sum(l.qty) AS units, sum(l.line_amount) AS revenue
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  WHERE l.product_key IS NOT NULL
                  GROUP BY 1, 2, 3) o
            GROUP BY 1, 2 $q$
        WHEN 'category_day' THEN $q$
            INSERT INTO agg.category_day (day, category, orders, units, revenue)
            SELECT o.day, o.category, count(*), sum(o.units), sum(o.revenue)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, coalesce(p.category, 'uncategorized') AS category,
                         l.txn_id, sum(l.qty) AS units, sum(l.line_amount) AS revenue
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  LEFT JOIN silver.products p ON p.product_key = l.product_key
                  GROUP BY 1, 2, 3) o
            GROUP BY 1, 2 $q$
        WHEN 'basket_pairs_day' THEN $q$
            INSERT INTO agg.basket_pairs_day (day, k1, k2, baskets)
            WITH baskets AS MATERIALIZED (
                SELECT DISTINCT (t.ts AT TIME ZONE 'UTC')::date AS day, l.txn_id, l.product_key
                FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                WHERE l.product_key IS NOT NULL
            )
            SELECT a.day, a.product_key, b.product_key, count(*)
            FROM baskets a JOIN baskets b ON b.txn_id = a.txn_id AND b.product_key >= a.product_key
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT day, 0, 0, count(DISTINCT txn_id) FROM baskets GROUP BY day $q$
    END;
    IF compute IS NULL THEN
        RAISE EXCEPTION 'not a gold aggregate: %', target_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT full_rebuild THEN
        -- Claim the queued days first, then read silver: a silver commit after the claim has its day queued
        -- again (its marker was not visible to the claim), so it is recomputed on the next refresh.
        WITH claimed AS (DELETE FROM agg.dirty_days WHERE target = target_name RETURNING day)
        SELECT array_agg(DISTINCT day) INTO days FROM claimed;
        IF days IS NULL THEN
            RETURN 0;
        END IF;
        IF cardinality(days) <= 31 THEN
            PERFORM agg.fold_totals(target_name, days, -1);
            EXECUTE format('DELETE FROM agg.%I WHERE day = ANY($1)', target_name) USING days;
            EXECUTE format(compute, $s$(SELECT t.* FROM unnest($1::date[]) AS d (day)
                                        JOIN silver.transactions t ON t.ts >= d.day::timestamp AT TIME ZONE 'UTC'
                                                                  AND t.ts < (d.day + 1)::timestamp AT TIME ZONE 'UTC')$s$)
                USING days;
            PERFORM agg.fold_totals(target_name, days, 1);
            RETURN cardinality(days);
        END IF;
        -- More than a month queued (a backfill, a bulk load): one pass over silver is cheaper than per-day reads.
    END IF;
    DELETE FROM agg.dirty_days WHERE target = target_name;
    EXECUTE format('DELETE FROM agg.%I', target_name);
    EXECUTE format(compute, 'silver.transactions');
    PERFORM agg.fold_totals(target_name, NULL, 1);
    EXECUTE format('SELECT count(DISTINCT day)::integer FROM agg.%I', target_name) INTO recomputed;
    RETURN recomputed;
END
$$;

-- The triggers of 0017, now also queueing basket_pairs_day and the stores for next_order_predictions.
CREATE OR REPLACE FUNCTION agg.mark_transaction_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO agg.dirty_days (target, day)
        SELECT a.target, d.day
        FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM new_rows) d
        CROSS JOIN unnest(ARRAY['store_day', 'basket_day', 'store_hour_day', 'product_day', 'category_day',
                                'basket_pairs_day']) AS a (target);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO agg.dirty_days (target, day)
        SELECT a.target, d.day
        FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM old_rows) d
        CROSS JOIN unnest(ARRAY['store_day', 'basket_day', 'store_hour_day', 'product_day', 'category_day',
                                'basket_pairs_day']) AS a (target);
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- The earliest order each store got: later than its last counted order, the store is only extended.
        INSERT INTO agg.dirty_stores (store_id, rebuild, ts, txn_id)
        SELECT DISTINCT ON (store_id) store_id, false, ts, txn_id FROM new_rows ORDER BY store_id, ts, txn_id;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO agg.dirty_stores (store_id, rebuild) SELECT DISTINCT store_id, true FROM old_rows;
    ELSE
        -- A moved order (other time or store) changes the intervals; another change only the recent orders.
        INSERT INTO agg.dirty_stores (store_id, rebuild)
        SELECT s.store_id, bool_or(s.moved)
        FROM (SELECT o.store_id, n.store_id AS to_store, (o.store_id, o.ts) IS DISTINCT FROM (n.store_id, n.ts) AS moved
              FROM old_rows o JOIN new_rows n USING (txn_id)) m
        CROSS JOIN LATERAL (VALUES (m.store_id, m.moved), (m.to_store, m.moved)) AS s (store_id, moved)
        GROUP BY s.store_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION agg.mark_line_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT min(txn_id), max(txn_id) INTO lo, hi FROM old_rows;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT min(txn_id), max(txn_id) INTO lo, hi FROM new_rows;
    ELSE
        SELECT min(txn_id), max(txn_id) INTO lo, hi
        FROM (SELECT txn_id FROM new_rows UNION ALL SELECT txn_id FROM old_rows) r;
    END IF;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    WITH touched AS MATERIALIZED (
        SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day, store_id FROM silver.transactions
        WHERE txn_id BETWEEN lo AND hi
    ),
    stores AS (
        INSERT INTO agg.dirty_stores (store_id, rebuild) SELECT DISTINCT store_id, false FROM touched
    )
    INSERT INTO agg.dirty_days (target, day)
    SELECT a.target, d.day
    FROM (SELECT DISTINCT day FROM touched) d
    CROSS JOIN unnest(ARRAY['basket_day', 'store_hour_day', 'product_day', 'category_day', 'basket_pairs_day'])
        AS a (target);
    RETURN NULL;
END
$$;

-- The row count of a plain gold view is its aggregate's (one row each): counted by the owner, so the pipeline
-- role still has no grant on agg.
CREATE FUNCTION ops.gold_aggregate_rows(target_name text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'agg' AND tablename = target_name) THEN
        RAISE EXCEPTION 'not a gold aggregate: %', target_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT count(*) FROM agg.%I', target_name) INTO found;
    RETURN found;
END
$$;
REVOKE ALL ON FUNCTION ops.gold_aggregate_rows(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.gold_aggregate_rows(text) TO scout_pipeline;

REVOKE ALL ON FUNCTION agg.fold_totals(text, date[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION agg.refresh_store_orders(boolean) FROM PUBLIC;

-- Fill the new state from the silver already there.
SELECT agg.fold_totals(target, NULL, 1) FROM unnest(ARRAY['store_hour_day', 'product_day']) AS target;
SELECT ops.refresh_gold_aggregate('basket_pairs_day', true);
SELECT ops.refresh_gold_aggregate('store_orders', true);

-- The views on the new state; names and columns unchanged. gold.sales_by_store_day and gold.basket_metrics
-- become plain views on their aggregates, as gold.sales_by_product_day did in 0017: a concurrent refresh
-- compares every row of a view (one per store and day, growing with history) to find the few a batch changed.
DROP MATERIALIZED VIEW gold.dashboard_summary;
DROP MATERIALIZED VIEW gold.store_segments;
DROP MATERIALIZED VIEW gold.sales_by_store_day;
DROP MATERIALIZED VIEW gold.basket_metrics;
DROP MATERIALIZED VIEW gold.sales_by_hour;
DROP MATERIALIZED VIEW gold.next_order_predictions;
DROP MATERIALIZED VIEW gold.product_associations;

CREATE VIEW gold.sales_by_store_day AS
SELECT store_id, day, orders, line_items, revenue
FROM agg.store_day;

CREATE VIEW gold.basket_metrics AS
SELECT store_id,
       day,
       orders,
       units,
       lines,
       revenue,
       round(units::numeric / orders, 2)  AS avg_units_per_basket,
       round(lines::numeric / orders, 2)  AS avg_lines_per_basket,
       round(revenue / orders, 2)         AS average_order_value,
       max_order_value
FROM agg.basket_day;

-- Unchanged from 0017 (recreated: it reads gold.sales_by_store_day).
CREATE MATERIALIZED VIEW gold.store_segments AS
WITH per_store AS (
    SELECT store_id, sum(orders)::bigint AS orders, sum(revenue) AS revenue, count(*)::bigint AS active_days,
           min(day) AS first_day, max(day) AS last_day
    FROM gold.sales_by_store_day
    GROUP BY store_id
),
measured AS (
    SELECT p.*,
           a.as_of_day,
           a.as_of_day - p.last_day                                       AS recency_days,
           a.as_of_day - p.first_day + 1                                  AS tenure_days,
           p.orders::numeric * 7 / (a.as_of_day - p.first_day + 1)        AS orders_per_week,
           coalesce((p.last_day - p.first_day)::numeric / nullif(p.active_days - 1, 0), 7) AS usual_gap_days
    FROM per_store p
    CROSS JOIN (SELECT max(last_day) AS as_of_day FROM per_store) a
),
ranked AS (
    SELECT m.*,
           count(*) OVER ()                          AS stores,
           count(*) OVER (ORDER BY revenue)          AS revenue_at_or_below,
           count(*) OVER (ORDER BY orders_per_week)  AS frequency_at_or_below
    FROM measured m
)
SELECT store_id,
       as_of_day,
       orders,
       revenue,
       round(revenue / orders, 2)                                          AS average_order_value,
       active_days,
       first_day,
       last_day,
       tenure_days,
       round(orders_per_week, 2)                                           AS orders_per_week,
       round((revenue_at_or_below + frequency_at_or_below)::numeric / (2 * stores), 3) AS value_score,
       CASE WHEN 3 * (revenue_at_or_below + frequency_at_or_below) > 4 * stores THEN 'high'
            WHEN 3 * (revenue_at_or_below + frequency_at_or_below) > 2 * stores THEN 'medium'
            ELSE 'low' END                                                 AS value_tier,
       recency_days,
       round(usual_gap_days, 2)                                            AS usual_gap_days,
       round(recency_days / usual_gap_days, 2)                             AS recency_ratio,
       CASE WHEN recency_days <= 1.5 * usual_gap_days THEN 'low'
            WHEN recency_days <= 3 * usual_gap_days THEN 'medium'
            ELSE 'high' END                                                AS churn_risk
FROM ranked
WITH DATA;
CREATE UNIQUE INDEX store_segments_key ON gold.store_segments (store_id);


CREATE MATERIALIZED VIEW gold.sales_by_hour AS
SELECT store_id, hour_of_day, orders, units, revenue, active_days
FROM agg.store_hour
WITH DATA;
CREATE UNIQUE INDEX sales_by_hour_key ON gold.sales_by_hour (store_id, hour_of_day);

CREATE MATERIALIZED VIEW gold.dashboard_summary AS
WITH totals AS (
    SELECT count(DISTINCT store_id)::bigint AS stores,
           coalesce(sum(orders), 0)::bigint AS orders,
           coalesce(sum(revenue), 0)        AS revenue,
           min(day)                         AS first_day,
           max(day)                         AS last_day
    FROM gold.sales_by_store_day
),
stores AS (
    SELECT store_id, sum(orders)::bigint AS orders, sum(revenue) AS revenue
    FROM gold.sales_by_store_day
    GROUP BY store_id
    ORDER BY sum(revenue) DESC, store_id
    LIMIT 5
),
products AS (
    SELECT t.product_key, p.sku, p.name, p.category, t.units, t.revenue
    FROM agg.product_total t
    JOIN silver.products p ON p.product_key = t.product_key
    ORDER BY t.revenue DESC, t.units DESC, t.product_key
    LIMIT 5
)
SELECT 1                                                      AS id,
       t.stores,
       (SELECT count(*) FROM agg.product_total)::bigint       AS products,
       t.orders,
       t.revenue,
       coalesce(round(t.revenue / nullif(t.orders, 0), 2), 0) AS average_order_value,
       t.first_day,
       t.last_day,
       coalesce((SELECT jsonb_agg(jsonb_build_object('store_id', s.store_id, 'orders', s.orders,
                                                     'revenue', s.revenue)
                                  ORDER BY s.revenue DESC, s.store_id) FROM stores s), '[]'::jsonb) AS top_stores,
       coalesce((SELECT jsonb_agg(jsonb_build_object('product_key', p.product_key, 'sku', p.sku, 'name', p.name,
                                                     'category', p.category, 'units', p.units,
                                                     'revenue', p.revenue)
                                  ORDER BY p.revenue DESC, p.units DESC, p.product_key) FROM products p),
                '[]'::jsonb)                                  AS top_products
FROM totals t
WITH DATA;
CREATE UNIQUE INDEX dashboard_summary_key ON gold.dashboard_summary (id);

-- Same definitions as 0008 (next-order predictions) and 0009 (product associations); docs/ANALYSTS.md.
CREATE MATERIALIZED VIEW gold.next_order_predictions AS
WITH predicted AS (
    SELECT s.store_id, s.orders, s.intervals, s.last_order_at, s.tested, s.hits,
           s.interval_days_sum / s.intervals AS mean_interval_days
    FROM agg.store_orders s
    WHERE s.intervals > 0
),
windowed AS (
    SELECT p.*,
           p.last_order_at + make_interval(secs => (p.mean_interval_days * 86400)::double precision) AS expected_next_at,
           greatest(1, 0.25 * p.mean_interval_days) AS window_days
    FROM predicted p
),
basket AS (
    SELECT ri.store_id,
           jsonb_agg(jsonb_build_object(
               'product_key', ri.product_key, 'sku', p.sku, 'name', p.name,
               'expected_qty', round(ri.qty::numeric / ri.orders_with, 2),
               'share', round(ri.orders_with::numeric / r.recent_orders, 3))
               ORDER BY ri.orders_with DESC, ri.qty DESC, ri.product_key) AS expected_items
    FROM agg.store_recent_items ri
    JOIN agg.store_recent r USING (store_id)
    JOIN silver.products p ON p.product_key = ri.product_key
    WHERE 2 * ri.orders_with >= r.recent_orders
    GROUP BY ri.store_id
)
SELECT p.store_id,
       (SELECT max(ts) FROM silver.transactions)                   AS as_of,
       p.orders,
       p.intervals,
       p.last_order_at,
       round(p.mean_interval_days, 2)                              AS mean_interval_days,
       p.expected_next_at,
       (p.expected_next_at AT TIME ZONE 'UTC')::date               AS expected_date,
       round(p.window_days, 2)                                     AS window_days,
       p.expected_next_at + make_interval(secs => (p.window_days * 86400)::double precision)
           < (SELECT max(ts) FROM silver.transactions)             AS overdue,
       p.tested                                                    AS backtested_intervals,
       p.hits                                                      AS backtest_hits,
       round((p.hits + 1)::numeric / (p.tested + 2), 3)            AS confidence,
       r.recent_orders                                             AS basket_from_orders,
       r.expected_basket_value,
       coalesce(b.expected_items, '[]'::jsonb)                     AS expected_items
FROM windowed p
JOIN agg.store_recent r USING (store_id)
LEFT JOIN basket b USING (store_id)
WITH DATA;
CREATE UNIQUE INDEX next_order_predictions_key ON gold.next_order_predictions (store_id);

CREATE MATERIALIZED VIEW gold.product_associations AS
WITH total AS (
    SELECT coalesce((SELECT baskets FROM agg.basket_pairs WHERE k1 = 0 AND k2 = 0), 0) AS n
),
unordered AS (
    SELECT k1, k2, baskets AS pair_orders
    FROM agg.basket_pairs
    WHERE baskets >= (SELECT greatest(2, (n + 99) / 100) FROM total)  -- >= 2 baskets and >= 1% of them
      AND k1 > 0 AND k1 < k2
),
pairs AS (
    SELECT k1 AS antecedent_key, k2 AS consequent_key, pair_orders FROM unordered
    UNION ALL
    SELECT k2, k1, pair_orders FROM unordered
)
SELECT pr.antecedent_key,
       pa.sku                                                          AS antecedent_sku,
       pa.name                                                         AS antecedent_name,
       pr.consequent_key,
       pc.sku                                                          AS consequent_sku,
       pc.name                                                         AS consequent_name,
       pr.pair_orders,
       ca.baskets                                                      AS antecedent_orders,
       cc.baskets                                                      AS consequent_orders,
       t.n                                                             AS total_orders,
       round(pr.pair_orders::numeric / t.n, 6)                         AS support,
       round(pr.pair_orders::numeric / ca.baskets, 4)                  AS confidence,
       round(pr.pair_orders::numeric * t.n / (ca.baskets * cc.baskets), 4) AS lift
FROM pairs pr
CROSS JOIN total t
JOIN agg.basket_pairs ca ON ca.k1 = pr.antecedent_key AND ca.k2 = pr.antecedent_key
JOIN agg.basket_pairs cc ON cc.k1 = pr.consequent_key AND cc.k2 = pr.consequent_key
JOIN silver.products pa ON pa.product_key = pr.antecedent_key
JOIN silver.products pc ON pc.product_key = pr.consequent_key
WITH DATA;
CREATE UNIQUE INDEX product_associations_key ON gold.product_associations (antecedent_key, consequent_key);
CREATE INDEX product_associations_sku_idx ON gold.product_associations (antecedent_sku);

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
