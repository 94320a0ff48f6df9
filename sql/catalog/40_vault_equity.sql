-- vault_equity: grain (venue, vault, "window", time_ms). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW vault_equity AS
SELECT * FROM @source(vault_equity);
