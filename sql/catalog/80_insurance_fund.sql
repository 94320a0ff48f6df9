-- insurance_fund: pool balances and changes over time; grain (venue, pool, asset, kind, time_ms).
CREATE OR REPLACE VIEW insurance_fund AS
SELECT * FROM @source(insurance_fund)
QUALIFY row_number() OVER (PARTITION BY venue, pool, asset, kind, time_ms ORDER BY source_key DESC) = 1;
