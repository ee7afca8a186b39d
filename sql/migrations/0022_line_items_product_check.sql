-- A line item's product key is no longer a foreign key: its check (a lookup and a FOR KEY SHARE lock of the
-- product row for every line) was a third of PostgreSQL's time in the silver step. Products are never deleted
-- and every key silver writes was read from silver.products; the quality check `unknown_product` (silver suite)
-- finds a recent line whose key has no product.
ALTER TABLE silver.line_items DROP CONSTRAINT line_items_product_key_fkey;
