-- cex_liquidations_by_side: liquidated USD per venue, symbol and liquidated position side in a window,
-- with the venue's side convention made explicit (raw_side is kept in the table).
-- Grain: one row per (venue, symbol, liquidated_position_side).
-- Parameters: $since_ms, $until_ms (epoch ms, inclusive window).
-- Example: since_ms=0 until_ms=9999999999999
SELECT venue, symbol, liquidated_position_side,
       count(*) AS orders,
       sum(size_base) AS size_base,
       sum(notional_usd) AS notional_usd,
       count(*) FILTER (WHERE notional_usd IS NULL) AS orders_without_usd
FROM cex_liquidations
WHERE time_ms BETWEEN $since_ms AND $until_ms
GROUP BY ALL
ORDER BY notional_usd DESC NULLS LAST;
