-- An unknown SKU whose name links to a catalogue product becomes that product's alias (the SKU learns its
-- product) instead of a second product with the same name. Its lines say so: link_method 'alias', with the
-- confidence of the name link that made the alias (method 'name' or 'fuzzy' here).

CREATE TABLE silver.product_aliases (
    sku         text PRIMARY KEY,
    product_key bigint       NOT NULL REFERENCES silver.products (product_key),
    name        text         NOT NULL,
    method      text         NOT NULL CHECK (method IN ('name', 'fuzzy')),
    confidence  numeric(4,3) NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    created_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX product_aliases_product_idx ON silver.product_aliases (product_key);
COMMENT ON TABLE silver.product_aliases IS 'SKUs first seen with a name that linked to this catalogue product';

GRANT SELECT, INSERT, UPDATE, DELETE ON silver.product_aliases TO scout_pipeline;

ALTER TABLE silver.line_items DROP CONSTRAINT line_items_link_method_check,
    ADD CONSTRAINT line_items_link_method_check
        CHECK (link_method IN ('sku', 'alias', 'name', 'fuzzy', 'unlinked')) NOT VALID;
ALTER TABLE silver.line_items VALIDATE CONSTRAINT line_items_link_method_check;
