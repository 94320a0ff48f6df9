-- adl_alerts: Bybit ADL alert snapshots per symbol; grain (venue, symbol, time_ms).
CREATE OR REPLACE VIEW adl_alerts AS
SELECT * FROM @source(adl_alerts)
QUALIFY row_number() OVER (PARTITION BY venue, symbol, time_ms ORDER BY source_key DESC) = 1;
