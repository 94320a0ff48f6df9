-- cex_market: mark/index price, funding and open interest snapshots; grain (venue, symbol, time_ms, source).
CREATE OR REPLACE VIEW cex_market AS
SELECT * FROM @source(cex_market);
