-- Helpers for ad-hoc SQL over the lake.
-- notional(px, sz): px x sz in USD without DECIMAL overflow (both operands are DECIMAL(38,10)).
CREATE OR REPLACE MACRO notional(px, sz) AS CAST(px AS DECIMAL(38,10)) * CAST(sz AS DECIMAL(38,10));
-- position_side(side): the side of the position a closing fill reduced ('A' sells a long).
CREATE OR REPLACE MACRO closed_position_side(side) AS CASE WHEN side = 'A' THEN 'long' ELSE 'short' END;
