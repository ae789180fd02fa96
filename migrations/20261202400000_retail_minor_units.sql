-- Retail prices are stored at their currency's own minor unit (whole yen, three-decimal
-- dinars), as computed: a fixed scale of 2 would read yen back as "1792.00" and round a
-- dinar price to the hundredth, below its cost. Unconstrained numeric keeps each value's
-- scale; dropping the scale rewrites neither table nor index.
ALTER TABLE plans ALTER COLUMN price_amount TYPE numeric;
ALTER TABLE orders ALTER COLUMN price_amount TYPE numeric;
