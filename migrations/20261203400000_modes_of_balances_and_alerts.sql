-- Balances and operator alerts belong to a mode too: the built-in simulators of test mode
-- and the live vendors of the same name keep separate balances, and an alert says which
-- mode raised it. Rows from before are adopted like the other tables (`mode_adoption`).
ALTER TABLE vendor_balances ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE vendor_balances DROP CONSTRAINT vendor_balances_pkey;
ALTER TABLE vendor_balances ADD PRIMARY KEY (livemode, vendor);

ALTER TABLE operator_alerts ADD COLUMN livemode boolean NOT NULL DEFAULT false;
