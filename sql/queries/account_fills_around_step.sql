-- account_fills_around_step: every fill of one account within $window_ms of one ADL step, to see what
-- it was doing just before and after (did it reduce or hedge right before being skipped or selected?).
-- Grain: one row per fill of $user (venue, user, fill_id) in the time window around the step.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue      venue id
--   $user       account address (lower-case 0x hex)
--   $step_id    adl_steps.step_id
--   $window_ms  half-width of the window, ms
-- Example: venue=hyperliquid user=0x0000000000000000000000000000000000000000 step_id=0 window_ms=3600000
SELECT f.time, f.block_number, f.coin, f.side, f.px, f.sz, f.start_position, f.dir, f.closed_pnl,
       f.is_liquidation, f.is_adl, f.liquidated_user, (f.time_ms - s.time_ms) AS ms_from_step
FROM fills f
JOIN adl_steps s ON s.venue = f.venue AND s.step_id = $step_id
WHERE f.venue = $venue AND f."user" = $user AND abs(f.time_ms - s.time_ms) <= $window_ms
ORDER BY f.block_number, f.event_index, f.time_ms;
