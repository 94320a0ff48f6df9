-- funding_rates: grain (venue, coin, time_ms). Overlapping inputs (re-pulled windows) are de-duplicated deterministically (highest source_key wins).
CREATE OR REPLACE VIEW funding_rates AS
SELECT * FROM @source(funding_rates)
QUALIFY row_number() OVER (PARTITION BY venue, coin, time_ms ORDER BY source_key DESC) = 1;
