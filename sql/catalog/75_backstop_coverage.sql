-- backstop_coverage: analytics output of the accounting (forensics/accounting, docs/accounting.md).
CREATE OR REPLACE VIEW backstop_coverage AS
SELECT * FROM @source(backstop_coverage);
