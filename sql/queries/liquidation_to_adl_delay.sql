-- liquidation_to_adl_delay: per coin, how long after its first liquidation the first ADL came, and
-- how many liquidation legs happened before it (the insurance/backstop phase).
-- Grain: one row per (venue, coin) that had ADL legs.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id
-- Example: venue=hyperliquid
WITH l AS (SELECT coin, min(time_ms) AS first_liq_ms FROM liquidations WHERE venue = $venue GROUP BY coin),
     a AS (SELECT coin, min(time_ms) AS first_adl_ms, count(*) AS adl_legs FROM adl_fills WHERE venue = $venue GROUP BY coin)
SELECT a.coin, epoch_ms(l.first_liq_ms) AS first_liquidation, epoch_ms(a.first_adl_ms) AS first_adl,
       (a.first_adl_ms - l.first_liq_ms) / 1000.0 AS delay_s,
       (SELECT count(*) FROM liquidations x WHERE x.venue = $venue AND x.coin = a.coin AND x.time_ms < a.first_adl_ms)
           AS liquidation_legs_before_adl,
       a.adl_legs
FROM a LEFT JOIN l USING (coin)
ORDER BY delay_s NULLS LAST, a.coin;
