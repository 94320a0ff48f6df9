-- stress_venue_outcomes: per scenario and venue, the waterfall (bad debt, insurance fund used, haircut, capital used) and the defaults it led to.
-- Grain: one row per (scenario, venue) of the latest run of each scenario.
-- Parameters: $min_haircut (only venues whose winners lost at least this share of profit; 0 = all).
-- Example: min_haircut=0
WITH latest AS (
    SELECT run_id, scenario FROM stress_runs QUALIFY row_number() OVER (PARTITION BY scenario ORDER BY run_time DESC) = 1
)
SELECT v.scenario, v.venue, v.kind, v.bad_debt, v.insurance_used, v.shortfall, v.haircut, v.capital_used, v.defaulted,
       v.frozen_settlement, v.exempt_share, v.critical_exempt_share,
       (SELECT count(*) FROM stress_defaults d WHERE d.run_id = v.run_id) AS scenario_defaults,
       (SELECT string_agg(d.node || ' (round ' || d.round || ', ' || d.cause || ')', '; ' ORDER BY d.round, d.node)
          FROM stress_defaults d WHERE d.run_id = v.run_id) AS default_timeline
FROM stress_venues v JOIN latest USING (run_id, scenario)
WHERE v.haircut >= $min_haircut
ORDER BY v.scenario, v.haircut DESC, v.venue;
