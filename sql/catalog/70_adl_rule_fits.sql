-- adl_rule_fits: output of rule inference and the exemption test (forensics/inference.py, forensics/exemption.py); grain (venue, rule).
CREATE OR REPLACE VIEW adl_rule_fits AS
SELECT * FROM @source(adl_rule_fits);
