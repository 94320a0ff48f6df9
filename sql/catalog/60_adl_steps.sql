-- adl_steps: analytics output of the reconstruction (forensics/reconstruct); grain (venue, step_id).
CREATE OR REPLACE VIEW adl_steps AS
SELECT * FROM @source(adl_steps);
