-- A vendor order belongs to one gateway order: before a purchase is recorded, the gateway
-- looks for another order already holding the same vendor reference (and callbacks find
-- orders by it).
CREATE INDEX order_attempts_vendor_reference ON order_attempts (vendor, vendor_reference)
    WHERE vendor_reference IS NOT NULL;
