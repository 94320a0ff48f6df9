-- exemption_flags: output of rule identification and the exemption test (forensics/audit/); grain (venue, user).
CREATE OR REPLACE VIEW exemption_flags AS
SELECT * FROM @source(exemption_flags);
