-- account_exemption_evidence: for one account, every ADL step where it was eligible, its rank there
-- under the inferred rule's features, whether it was selected, and any legitimate skip reason.
-- Grain: one row per (venue, step_id) where $user was in the pool.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id
--   $user   account address (lower-case 0x hex)
-- Example: venue=hyperliquid user=0x0000000000000000000000000000000000000000
WITH ranked AS (
    SELECT p.*, s.time_ms, s.block_number, s.pool_size,
           rank() OVER (PARTITION BY p.step_id ORDER BY
               (CASE WHEN p.side = 'long' THEN p.mark_px / p.entry_px ELSE p.entry_px / p.mark_px END) * p.leverage
               DESC NULLS LAST) AS hl_index_rank,
           count(*) FILTER (WHERE p.selected) OVER (PARTITION BY p.step_id) AS selected_in_step
    FROM adl_pools p JOIN adl_steps s USING (venue, step_id)
    WHERE p.venue = $venue
)
SELECT step_id, epoch_ms(time_ms) AS time, block_number, coin, side, size, notional_usd, upnl_usd, leverage,
       hl_index_rank, pool_size, selected_in_step, selected, fill_order, closed_size, skip_reason
FROM ranked
WHERE "user" = $user
ORDER BY step_id;
