-- Whether the callback passed a signature/secret check (it may be applied as is) or was an
-- unsigned hint (re-read from the vendor). Needed to re-apply events that waited for
-- their order.
ALTER TABLE vendor_events ADD COLUMN trusted boolean NOT NULL DEFAULT false;
