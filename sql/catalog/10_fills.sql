-- fills: one row per fill leg; grain (venue, user, fill_id); fill_id is the tid (legacy API fills without tid: a hash).
-- The same fill can arrive from several inputs (node files and info API pulls): one row per key by the
-- table's dedup rule (node files win, then the input ingested last; forensics/tables, `liqf schema fills`).
CREATE OR REPLACE VIEW fills AS
SELECT * FROM @source(fills);
