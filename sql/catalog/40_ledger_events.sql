-- ledger_events: grain (venue, event_id). event_id is the event's identity for one account across sources
-- (user, hash, time_ms, type, delta_json: forensics.formats.hyperliquid.misc_events.ledger_event_id), so the same
-- event pulled from the info API and read from a node misc file is one row: the node's copy is kept (it has
-- block_number and event_index), then the highest source_key (re-pulled windows). Rows written before event_id
-- existed (NULL) keep their old grain until their input is ingested again.
CREATE OR REPLACE VIEW ledger_events AS
SELECT * FROM @source(ledger_events)
QUALIFY row_number() OVER (
    PARTITION BY venue, coalesce(event_id, concat_ws('|', "user", hash, type, time_ms, block_number, event_index))
    ORDER BY block_number IS NULL, source_key DESC) = 1;
