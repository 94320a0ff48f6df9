-- liquidation_events: grain (venue, "user", time_ms, block_number, event_index). Account-level liquidation summaries (no cash effect). Overlapping inputs: highest source_key wins.
CREATE OR REPLACE VIEW liquidation_events AS
SELECT * FROM @source(liquidation_events)
QUALIFY row_number() OVER (PARTITION BY venue, "user", time_ms, block_number, event_index ORDER BY source_key DESC) = 1;
