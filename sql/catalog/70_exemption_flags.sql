-- exemption_flags: output of rule inference and the exemption test (forensics/inference.py, forensics/exemption.py); grain (venue, user).
CREATE OR REPLACE VIEW exemption_flags AS
SELECT * FROM @source(exemption_flags);
