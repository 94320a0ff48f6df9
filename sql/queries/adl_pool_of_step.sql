-- adl_pool_of_step: who was eligible in one ADL step, how each candidate ranked on the main features,
-- and who was actually deleveraged (in fill order), with any legitimate skip reason.
-- Grain: one row per (venue, step_id, user) of the step's reconstructed pool.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue    venue id, e.g. 'hyperliquid'
--   $step_id  adl_steps.step_id
-- Example: venue=hyperliquid step_id=0
SELECT p.step_id, s.block_number, s.time_ms, p.coin, s.liquidated_user, s.liquidated_side,
       p."user", p.side, p.size, p.entry_px, p.mark_px, p.mark_source, p.notional_usd, p.upnl_usd,
       p.pnl_pct_price, p.account_value_usd, p.leverage,
       (CASE WHEN p.side = 'long' THEN p.mark_px / p.entry_px ELSE p.entry_px / p.mark_px END) * p.leverage
           AS hl_index,
       p.margin_mode, p.selected, p.fill_order, p.closed_size, p.partial, p.skip_reason
FROM adl_pools p
JOIN adl_steps s USING (venue, step_id)
WHERE p.venue = $venue AND p.step_id = $step_id
ORDER BY p.selected DESC, p.fill_order, hl_index DESC NULLS LAST, p."user";
