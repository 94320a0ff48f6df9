-- backstop_coverage_over_time: the liquidator vault's estimated capacity against the cumulative loser
-- deficit over the window; a ratio below 1 means the backstop alone could not absorb the losses.
-- Grain: one row per (venue, vault, time_ms) observation.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id
-- Example: venue=hyperliquid
SELECT vault, epoch_ms(time_ms) AS time, round(position_notional_usd, 2) AS position_notional_usd,
       round(equity_est_usd, 2) AS equity_est_usd, round(cumulative_deficit_usd, 2) AS cumulative_deficit_usd,
       round(coverage_ratio, 4) AS coverage_ratio, round(residual_shortfall_usd, 2) AS residual_shortfall_usd
FROM backstop_coverage
WHERE venue = $venue
ORDER BY vault, time_ms;
