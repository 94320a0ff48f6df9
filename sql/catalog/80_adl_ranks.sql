-- adl_ranks: venue-reported ADL ranks (own positions) and symbol risk; grain (venue, account, symbol, position_side, kind, time_ms).
CREATE OR REPLACE VIEW adl_ranks AS
SELECT * FROM @source(adl_ranks);
