-- liquidation_events: grain (venue, "user", time_ms, block_number, event_index). Account-level liquidation summaries (no cash effect). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW liquidation_events AS
SELECT * FROM @source(liquidation_events);
