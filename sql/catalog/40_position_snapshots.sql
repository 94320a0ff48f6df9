-- position_snapshots: grain (venue, "user", coin, time_ms). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW position_snapshots AS
SELECT * FROM @source(position_snapshots);
