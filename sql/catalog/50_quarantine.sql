-- quarantine: every rejected input record with its reason; grain (source_key, line_number, item_index).
CREATE OR REPLACE VIEW quarantine AS
SELECT * FROM @source(quarantine);
