-- accounting_hmadl_event_aggregates: the Oct-10 ADL event aggregates published by
-- ConejoCapital/HyperMultiAssetedADL (34,983 ADL legs, $2,103,111,431 notional, 162 coins,
-- 19,337 users, $834.3M realized PnL), recomputed from its canonical per-coin and per-user CSVs, with
-- the two caveats that matter: negative-equity flags count events (302) on the coin file but users
-- (165) on the user file, and the liquidation totals include the liquidated legs of ADL trades.
-- Grain: one row (the whole 21:15-21:27 UTC window).
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $coin_csv      path of canonical/adl_by_coin_REALTIME.csv
--   $user_csv      path of canonical/adl_by_user_REALTIME.csv
--   $combined_csv  path of history/combined_impact_by_ticker.csv
-- Example: coin_csv=@realdata/HyperMultiAssetedADL/canonical/adl_by_coin_REALTIME.csv user_csv=@realdata/HyperMultiAssetedADL/canonical/adl_by_user_REALTIME.csv combined_csv=@realdata/HyperMultiAssetedADL/history/combined_impact_by_ticker.csv
WITH coin AS (SELECT * FROM read_csv($coin_csv)),
     usr AS (SELECT * FROM read_csv($user_csv)),
     comb AS (SELECT * FROM read_csv($combined_csv))
SELECT
    (SELECT sum(num_events) FROM coin)::BIGINT                         AS adl_legs,
    (SELECT round(sum(adl_notional)) FROM coin)::BIGINT                AS adl_notional_usd,
    (SELECT round(sum(closed_pnl)) FROM coin)::BIGINT                  AS adl_closed_pnl_usd,
    (SELECT count(*) FROM coin)::BIGINT                                AS coins,
    (SELECT count(*) FROM usr)::BIGINT                                 AS users,
    (SELECT sum(num_adl_events) FROM usr)::BIGINT                      AS user_file_adl_legs,
    (SELECT round(sum(adl_notional)) FROM usr)::BIGINT                 AS user_file_adl_notional_usd,
    (SELECT sum(is_negative_equity) FROM coin)::BIGINT                 AS negative_equity_events,
    (SELECT count(*) FILTER (WHERE is_negative_equity) FROM usr)::BIGINT AS negative_equity_users,
    (SELECT sum(liq_events) FROM comb)::BIGINT                         AS liquidation_legs_published,
    (SELECT round(sum(liq_notional)) FROM comb)::BIGINT                AS liquidation_notional_published_usd,
    (SELECT sum(total_events) FROM comb)::BIGINT                       AS total_events_published,
    (SELECT count(*) FILTER (WHERE liq_events >= adl_events AND liq_notional >= adl_notional - 0.01) FROM comb)::BIGINT
                                                                       AS tickers_liq_ge_adl,
    (SELECT count(*) FROM comb)::BIGINT                                AS tickers_combined,
    (SELECT count(*) FILTER (WHERE adl_events > 0 AND liq_events = adl_events
                             AND abs(liq_notional - adl_notional) < 0.01) FROM comb)::BIGINT
                                                                       AS tickers_liq_equals_adl,
    (SELECT round(sum(liq_notional) - sum(adl_notional)) FROM comb)::BIGINT AS liquidation_notional_excl_adl_upper_usd;
