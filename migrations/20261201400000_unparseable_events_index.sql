-- Counting a vendor's kept unparseable callbacks (capped per vendor) must not scan the log.
CREATE INDEX vendor_events_unparseable ON vendor_events (vendor) WHERE status = 'unparseable';
