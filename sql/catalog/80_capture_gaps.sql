-- capture_gaps: interruptions of streaming capture (one row per gap); grain (venue, stream, gap_start_ms).
CREATE OR REPLACE VIEW capture_gaps AS
SELECT * FROM @source(capture_gaps);
