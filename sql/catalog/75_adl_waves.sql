-- adl_waves: analytics output of the accounting (forensics/accounting, docs/accounting.md).
CREATE OR REPLACE VIEW adl_waves AS
SELECT * FROM @source(adl_waves);
