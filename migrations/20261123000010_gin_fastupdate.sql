-- Coverage lookups must not scan a GIN pending list after a catalogue sync: maintain the
-- indexes at write time (syncs write in bulk, reads are the hot path).
ALTER INDEX plans_countries SET (fastupdate = off);
ALTER INDEX vendor_offers_countries SET (fastupdate = off);
