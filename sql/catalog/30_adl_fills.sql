-- adl_fills: one row per auto-deleveraged winner leg (dir = 'Auto-Deleveraging'); grain (venue, user, tid).
CREATE OR REPLACE VIEW adl_fills AS
SELECT venue, date, coin, "user", time, time_ms, block_number, event_index, tid, side,
       closed_position_side(side) AS adl_position_side,
       px, sz, notional(px, sz) AS notional_usd,
       start_position, closed_pnl,
       liquidation_mark_px AS mark_px,
       liquidated_user,
       abs(start_position) > sz AS is_partial
FROM fills
WHERE is_adl;
