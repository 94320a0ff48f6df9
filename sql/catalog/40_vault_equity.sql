-- vault_equity: grain (venue, vault, "window", time_ms). Overlapping inputs (re-pulled windows) are de-duplicated deterministically (highest source_key wins).
CREATE OR REPLACE VIEW vault_equity AS
SELECT * FROM @source(vault_equity)
QUALIFY row_number() OVER (PARTITION BY venue, vault, "window", time_ms ORDER BY source_key DESC) = 1;
