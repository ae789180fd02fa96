-- Lookups that ran as full scans of every order ever taken, so their cost grew with the
-- history rather than with what they look for:
-- - a callback naming a vendor's order reference finds the order by the reference on the
--   order itself or on any of its attempts (`store::orders::by_vendor_reference`);
-- - routing's health window reads the attempts of every vendor started in the last few
--   minutes (`store::breakers::attempt_window`), once a second on every replica.
CREATE INDEX orders_vendor_reference ON orders (vendor, vendor_reference)
    WHERE vendor_reference IS NOT NULL;
CREATE INDEX order_attempts_started ON order_attempts (started_at);
