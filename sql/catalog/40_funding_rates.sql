-- funding_rates: grain (venue, coin, time_ms). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW funding_rates AS
SELECT * FROM @source(funding_rates);
