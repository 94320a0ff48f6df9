-- adl_rule_fits: output of rule identification and the exemption test (forensics/audit/); grain (venue, rule).
CREATE OR REPLACE VIEW adl_rule_fits AS
SELECT * FROM @source(adl_rule_fits);
