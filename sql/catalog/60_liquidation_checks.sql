-- liquidation_checks: analytics output of the reconstruction; grain (venue, "user", time_ms, block_number). Liquidation summaries vs the replayed account value.
CREATE OR REPLACE VIEW liquidation_checks AS
SELECT * FROM @source(liquidation_checks);
