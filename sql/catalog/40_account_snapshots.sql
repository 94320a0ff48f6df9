-- account_snapshots: grain (venue, "user", time_ms). Overlapping inputs (re-pulled windows) are de-duplicated deterministically (highest source_key wins).
CREATE OR REPLACE VIEW account_snapshots AS
SELECT * FROM @source(account_snapshots)
QUALIFY row_number() OVER (PARTITION BY venue, "user", time_ms ORDER BY source_key DESC) = 1;
