-- adl_haircuts: analytics output of the accounting (forensics/accounting, docs/accounting.md).
CREATE OR REPLACE VIEW adl_haircuts AS
SELECT * FROM @source(adl_haircuts);
