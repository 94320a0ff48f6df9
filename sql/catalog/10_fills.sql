-- fills: one row per fill leg; grain (venue, user, tid).
-- The same fill can arrive from several inputs (node files and info API pulls); node files win,
-- then the lowest source_key, so the view is deterministic.
CREATE OR REPLACE VIEW fills AS
SELECT * FROM @source(fills)
QUALIFY row_number() OVER (
    PARTITION BY venue, "user", tid
    ORDER BY (source = 'node_fills_by_block') DESC, source_key
) = 1;
