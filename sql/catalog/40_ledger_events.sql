-- ledger_events: grain (venue, event_id). event_id is the event's identity for one account across sources (user, hash, time_ms, type, delta_json: forensics.formats.hyperliquid.ledger.ledger_event_id), so the same event from the info API and from a node misc file is one row. One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`): node files first, then the input ingested last.
CREATE OR REPLACE VIEW ledger_events AS
SELECT * FROM @source(ledger_events);
