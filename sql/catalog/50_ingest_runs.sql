-- ingest_runs: one reconciliation row per ingested input; grain (venue, source_key).
-- records_read = rows_written + rows_quarantined holds for every row.
CREATE OR REPLACE VIEW ingest_runs AS
SELECT * FROM @source(ingest_runs);
