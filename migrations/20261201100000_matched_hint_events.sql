-- An unsigned callback that completed an order because it matched what we placed there
-- (Multiverse, which documents no order query) is recorded as such: weaker than signed.
ALTER TABLE vendor_events DROP CONSTRAINT vendor_events_status_check;
ALTER TABLE vendor_events ADD CONSTRAINT vendor_events_status_check
    CHECK (status IN ('received', 'applied', 'waiting', 'ignored', 'unparseable', 'failed', 'matched_hint'));
