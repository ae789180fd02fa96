-- Reconciling an order by our id looks up the eSIMs other orders already own at the same
-- vendor around the attempt's time.
CREATE INDEX esims_vendor_created ON esims (vendor, created_at);
