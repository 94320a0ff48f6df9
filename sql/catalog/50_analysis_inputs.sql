-- analysis_inputs: the input versions each analysis was computed from; grain (venue, analysis, input_table, input_key).
-- analytics_freshness (a table written at every refresh) says whether they still match the lake.
CREATE OR REPLACE VIEW analysis_inputs AS
SELECT * FROM @source(analysis_inputs);
