-- exemption_candidates: accounts passed over by ADL while ranked above the cut more often than the calibrated
-- skip rate allows under the identified rule,
-- strongest evidence first (statistical anomalies, not accusations), with the evidence JSON.
-- Grain: one row per (venue, user) with q_value <= $q.
-- Parameters (DuckDB named, bound by the caller, never interpolated):
--   $venue  venue id
--   $q      false discovery rate threshold (e.g. 0.05)
-- Example: venue=hyperliquid q=0.05
SELECT "user", rule, eligible_steps, opportunities, skips, round(expected_skips, 3) AS expected_skips,
       observed_selections, p_value, q_value, evidence_json
FROM exemption_flags
WHERE venue = $venue AND q_value <= $q
ORDER BY q_value, p_value, "user";
