-- insurance_fund: pool balances and changes over time; grain (venue, pool, asset, kind, time_ms).
CREATE OR REPLACE VIEW insurance_fund AS
SELECT * FROM @source(insurance_fund);
