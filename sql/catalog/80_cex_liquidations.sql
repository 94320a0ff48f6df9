-- cex_liquidations: venue-reported liquidation / ADL orders and trades; grain (venue, source, event_id).
-- Re-pulled windows overlap: the same event from several inputs is kept once (the table's dedup rule).
CREATE OR REPLACE VIEW cex_liquidations AS
SELECT * FROM @source(cex_liquidations);
