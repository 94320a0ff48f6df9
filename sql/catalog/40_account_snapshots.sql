-- account_snapshots: grain (venue, "user", time_ms). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW account_snapshots AS
SELECT * FROM @source(account_snapshots);
