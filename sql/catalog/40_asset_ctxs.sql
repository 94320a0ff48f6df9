-- asset_ctxs: grain (venue, coin, time_ms). One row per key: the table's dedup rule (forensics/tables, `liqf schema TABLE`).
CREATE OR REPLACE VIEW asset_ctxs AS
SELECT * FROM @source(asset_ctxs);
