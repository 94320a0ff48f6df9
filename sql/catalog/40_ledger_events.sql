-- ledger_events: grain (venue, "user", hash, type, time_ms, block_number, event_index): API and node rows share one shape (block fields NULL from the API). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW ledger_events AS
SELECT * FROM @source(ledger_events);
