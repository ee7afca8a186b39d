-- Gold: product associations ("customers who bought A also bought B"), one row per ordered pair A -> B.
-- A basket is a silver transaction with at least one linked product; N is the number of such baskets.
--   support    = baskets with A and B / N
--   confidence = baskets with A and B / baskets with A          (P(B | A))
--   lift       = confidence / (baskets with B / N)               (> 1: bought together more than by chance)
-- Minimum support: a pair is kept when it occurs in at least 2 baskets and in at least 1% of them.
-- The raw counts are kept so any figure can be recomputed exactly. A pair can only reach the minimum
-- support when each of its products does, so pairs are counted among those products only, once per
-- unordered pair, then emitted in both directions.
CREATE MATERIALIZED VIEW gold.product_associations AS
WITH baskets AS (
    SELECT DISTINCT l.txn_id, l.product_key
    FROM silver.line_items l
    WHERE l.product_key IS NOT NULL
),
total AS (
    SELECT count(DISTINCT txn_id)::bigint AS n FROM baskets
),
per_product AS (
    SELECT product_key, count(*)::bigint AS orders FROM baskets GROUP BY product_key
),
frequent AS (
    SELECT b.txn_id, b.product_key
    FROM baskets b
    JOIN per_product p USING (product_key)
    WHERE p.orders >= 2 AND p.orders * 100 >= (SELECT n FROM total)
),
unordered AS (
    SELECT a.product_key AS k1, b.product_key AS k2, count(*)::bigint AS pair_orders
    FROM frequent a
    JOIN frequent b ON b.txn_id = a.txn_id AND b.product_key > a.product_key
    GROUP BY a.product_key, b.product_key
    HAVING count(*) >= 2 AND count(*) * 100 >= (SELECT n FROM total)
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
       ca.orders                                                       AS antecedent_orders,
       cc.orders                                                       AS consequent_orders,
       t.n                                                             AS total_orders,
       round(pr.pair_orders::numeric / t.n, 6)                         AS support,
       round(pr.pair_orders::numeric / ca.orders, 4)                   AS confidence,
       round(pr.pair_orders::numeric * t.n / (ca.orders * cc.orders), 4) AS lift
FROM pairs pr
CROSS JOIN total t
JOIN per_product ca ON ca.product_key = pr.antecedent_key
JOIN per_product cc ON cc.product_key = pr.consequent_key
JOIN silver.products pa ON pa.product_key = pr.antecedent_key
JOIN silver.products pc ON pc.product_key = pr.consequent_key
WITH DATA;
CREATE UNIQUE INDEX product_associations_key ON gold.product_associations (antecedent_key, consequent_key);
CREATE INDEX product_associations_sku_idx ON gold.product_associations (antecedent_sku);

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
