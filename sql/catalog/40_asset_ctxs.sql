-- asset_ctxs: grain (venue, coin, time_ms). Overlapping inputs (re-pulled windows) are de-duplicated deterministically (highest source_key wins).
CREATE OR REPLACE VIEW asset_ctxs AS
SELECT * FROM @source(asset_ctxs)
QUALIFY row_number() OVER (PARTITION BY venue, coin, time_ms ORDER BY source_key DESC) = 1;
