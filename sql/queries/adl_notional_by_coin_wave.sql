-- adl_notional_by_coin_wave: ADL notional and legs per coin within each ADL wave (steps closer than
-- the reconstruction's gap share a wave), to see which markets each burst hit.
-- Grain: one row per (venue, wave_id, coin).
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id
-- Example: venue=hyperliquid
SELECT s.wave_id, s.coin, count(DISTINCT s.step_id) AS steps, sum(s.legs) AS adl_legs,
       round(sum(s.notional_usd), 2) AS adl_notional_usd,
       min(epoch_ms(s.time_ms)) AS wave_first_step, max(epoch_ms(s.time_ms)) AS wave_last_step
FROM adl_steps s
WHERE s.venue = $venue
GROUP BY s.wave_id, s.coin
ORDER BY s.wave_id, adl_notional_usd DESC, s.coin;
