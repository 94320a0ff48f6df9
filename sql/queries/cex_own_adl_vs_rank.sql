-- cex_own_adl_vs_rank: each own-account ADL fill next to the last ADL rank the venue reported for that
-- symbol before it (was the account really at the front of the queue?).
-- Grain: one row per own ADL fill (venue, user, fill_id).
-- Parameters: $venue (e.g. 'binance', 'bybit', 'okx').
-- Example: venue=binance
SELECT f.venue, f."user" AS account, f.coin AS symbol, f.fill_id, f.time_ms, f.px, f.sz,
       r.rank AS rank_before, r.rank_max, (f.time_ms - r.time_ms) / 1000.0 AS rank_age_s
FROM fills f
ASOF LEFT JOIN adl_ranks r
  ON r.venue = f.venue AND r.account = f."user" AND r.symbol = f.coin AND r.kind = 'account_rank' AND r.time_ms <= f.time_ms
WHERE f.is_adl AND f.venue = $venue
ORDER BY f.time_ms;
