-- accounting_hmadl_top_coins: the "Top ADL'd assets" table of HyperMultiAssetedADL's README
-- (BTC $620.9M 29.5% 2,443 events; ETH $458.0M; SOL $276.2M; HYPE $189.9M; XPL $65.8M), recomputed
-- from canonical/adl_net_volume_full_12min.csv (net_volume = sum of |sz|).
-- Grain: one row per coin (ticker), largest ADL notional first, the first $top rows.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $net_volume_csv  path of canonical/adl_net_volume_full_12min.csv
--   $top             number of coins to return (5 for the README table)
-- Example: net_volume_csv=@realdata/HyperMultiAssetedADL/canonical/adl_net_volume_full_12min.csv top=5
SELECT row_number() OVER (ORDER BY net_notional_usd DESC, ticker) AS rank,
       ticker AS coin,
       net_notional_usd AS adl_notional_usd,
       round(100 * net_notional_usd / sum(net_notional_usd) OVER (), 1) AS share_pct,
       num_adl_events AS adl_legs,
       net_volume AS closed_size,
       total_pnl AS closed_pnl_usd
FROM read_csv($net_volume_csv)
ORDER BY adl_notional_usd DESC, coin
LIMIT $top;
