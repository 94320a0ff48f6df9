-- stress_*: contagion stress-test outputs (forensics/contagion, docs/contagion.md); one run per scenario file.
CREATE OR REPLACE VIEW stress_runs AS SELECT * FROM @source(stress_runs);
CREATE OR REPLACE VIEW stress_defaults AS SELECT * FROM @source(stress_defaults);
CREATE OR REPLACE VIEW stress_venues AS SELECT * FROM @source(stress_venues);
CREATE OR REPLACE VIEW stress_sweeps AS SELECT * FROM @source(stress_sweeps);
