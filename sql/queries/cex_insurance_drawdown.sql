-- cex_insurance_drawdown: how far and how fast each insurance pool fell from its running peak.
-- Grain: one row per (venue, pool, asset) with the deepest drawdown in the window.
-- Parameters: $since_ms, $until_ms (epoch ms).
-- Example: since_ms=0 until_ms=9999999999999
WITH s AS (
    SELECT venue, pool, asset, time_ms, balance,
           max(balance) OVER (PARTITION BY venue, pool, asset ORDER BY time_ms) AS peak
    FROM insurance_fund
    WHERE kind IN ('balance', 'bankruptcy_loss', 'liquidation_balance_deposit') AND balance IS NOT NULL
      AND time_ms BETWEEN $since_ms AND $until_ms
)
SELECT venue, pool, asset,
       max(peak - balance) AS max_drawdown,
       max((peak - balance) / nullif(peak, 0)) AS max_drawdown_pct,
       arg_max(time_ms, peak - balance) AS trough_ms
FROM s GROUP BY ALL ORDER BY max_drawdown_pct DESC NULLS LAST;
