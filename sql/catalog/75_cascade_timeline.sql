-- cascade_timeline: analytics output of the accounting (forensics/accounting, docs/accounting.md).
CREATE OR REPLACE VIEW cascade_timeline AS
SELECT * FROM @source(cascade_timeline);
