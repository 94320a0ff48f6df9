-- funding_payments: grain (venue, "user", coin, time_ms). Hourly funding from misc_events_by_block; funding_amount > 0 = received. One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW funding_payments AS
SELECT * FROM @source(funding_payments);
