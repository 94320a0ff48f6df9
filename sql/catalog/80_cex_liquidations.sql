-- cex_liquidations: venue-reported liquidation / ADL orders and trades; grain (venue, source, event_id).
-- Re-pulled windows overlap: the same event from several inputs is kept once (highest source_key wins).
CREATE OR REPLACE VIEW cex_liquidations AS
SELECT * FROM @source(cex_liquidations)
QUALIFY row_number() OVER (PARTITION BY venue, source, event_id ORDER BY source_key DESC) = 1;
