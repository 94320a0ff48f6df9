-- funding_payments: grain (venue, "user", coin, time_ms). Hourly funding from misc_events_by_block; funding_amount > 0 = received. Overlapping inputs: highest source_key wins.
CREATE OR REPLACE VIEW funding_payments AS
SELECT * FROM @source(funding_payments)
QUALIFY row_number() OVER (PARTITION BY venue, "user", coin, time_ms ORDER BY source_key DESC) = 1;
