-- fills: one row per fill leg; grain (venue, user, fill_id); fill_id is the tid (legacy API fills without tid: a hash).
-- The same fill can arrive from several inputs (node files and info API pulls); node files win,
-- then the lowest source_key, so the view is deterministic.
CREATE OR REPLACE VIEW fills AS
SELECT * FROM @source(fills)
QUALIFY row_number() OVER (
    PARTITION BY venue, "user", fill_id
    ORDER BY (source = 'node_fills_by_block') DESC, source_key
) = 1;
