-- top_adl_accounts: which accounts were auto-deleveraged the most, by notional, with how many ADL legs,
-- coins and partial closes, and the realized PnL the ADL crystallized.
-- Grain: one row per (venue, user), largest ADL notional first, the first $limit rows.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id, e.g. 'hyperliquid'
--   $limit  number of accounts to return (default 20)
-- Example: venue=hyperliquid limit=20
-- Defaults: limit=20
SELECT "user", count(*) AS adl_legs, count(DISTINCT coin) AS coins,
       round(sum(notional_usd)::DOUBLE, 2) AS adl_notional_usd,
       round(sum(closed_pnl)::DOUBLE, 2) AS realized_pnl_usd,
       count(*) FILTER (WHERE is_partial) AS partial_legs,
       min(time) AS first_adl, max(time) AS last_adl
FROM adl_fills
WHERE venue = $venue
GROUP BY "user"
ORDER BY adl_notional_usd DESC, "user"
LIMIT $limit;
