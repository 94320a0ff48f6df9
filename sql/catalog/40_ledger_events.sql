-- ledger_events: grain (venue, "user", hash, type, time_ms, block_number, event_index): API and node rows share one shape (block fields NULL from the API). Overlapping inputs (re-pulled windows) are de-duplicated deterministically (highest source_key wins).
CREATE OR REPLACE VIEW ledger_events AS
SELECT * FROM @source(ledger_events)
QUALIFY row_number() OVER (PARTITION BY venue, "user", hash, type, time_ms, block_number, event_index ORDER BY source_key DESC) = 1;
