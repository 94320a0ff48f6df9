-- liquidations: one row per liquidated leg of a non-ADL trade; grain (venue, liquidated_user, tid).
-- The vault's legs of ADL trades also carry liquidatedUser == owner; they are excluded here (they are
-- the other side of adl_fills), which avoids the double counting seen in published Oct-10 totals.
-- Caveat: when only the vault's own fills were pulled (no winner legs), its ADL legs cannot be told
-- apart from liquidations.
CREATE OR REPLACE VIEW liquidations AS
WITH legs AS (
    SELECT *,
           bool_or(is_adl) OVER (PARTITION BY venue, coin, tid) AS trade_is_adl,
           max(CASE WHEN NOT is_liquidated_leg THEN "user" END) OVER (PARTITION BY venue, coin, tid) AS other_user
    FROM fills
    WHERE is_liquidation
)
SELECT venue, date, coin, "user" AS liquidated_user, time, time_ms, block_number, tid, side,
       closed_position_side(side) AS liquidated_position_side,
       px, sz, notional(px, sz) AS notional_usd,
       liquidation_mark_px AS mark_px, liquidation_method AS method,
       other_user AS counterparty, closed_pnl
FROM legs
WHERE is_liquidated_leg AND NOT trade_is_adl;
