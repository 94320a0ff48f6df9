-- adl_alerts: Bybit ADL alert snapshots per symbol; grain (venue, symbol, time_ms).
CREATE OR REPLACE VIEW adl_alerts AS
SELECT * FROM @source(adl_alerts);
