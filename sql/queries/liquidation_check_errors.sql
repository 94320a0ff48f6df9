-- liquidation_check_errors: how far the replayed account value is from each liquidation summary's
-- accountValue (a check of the reconstruction; the summaries are never used as cash).
-- Grain: one row per leverage type ('Cross', 'Isolated').
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id, e.g. 'hyperliquid'
-- Example: venue=hyperliquid
SELECT leverage_type, count(*) AS events,
       median(abs(error)) AS abs_error_median_usd, quantile_cont(abs(error), 0.9) AS abs_error_p90_usd,
       avg(CASE WHEN rel_error <= 0.01 THEN 1 ELSE 0 END) AS within_1pct
FROM liquidation_checks
WHERE venue = $venue
GROUP BY leverage_type
ORDER BY leverage_type;
