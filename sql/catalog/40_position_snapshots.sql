-- position_snapshots: grain (venue, "user", coin, time_ms). Overlapping inputs (re-pulled windows) are de-duplicated deterministically (highest source_key wins).
CREATE OR REPLACE VIEW position_snapshots AS
SELECT * FROM @source(position_snapshots)
QUALIFY row_number() OVER (PARTITION BY venue, "user", coin, time_ms ORDER BY source_key DESC) = 1;
