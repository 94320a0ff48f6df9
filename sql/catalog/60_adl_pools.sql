-- adl_pools: analytics output of the reconstruction (forensics/reconstruct); grain (venue, step_id, user).
CREATE OR REPLACE VIEW adl_pools AS
SELECT * FROM @source(adl_pools);
