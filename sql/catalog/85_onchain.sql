-- onchain_logs: grain (chain, block_number, log_index); files keyed by (stream, block segment), so a
-- log appears once per stream; the same log in two streams (overlapping filters) is kept once.
CREATE OR REPLACE VIEW onchain_logs AS
SELECT * FROM @source(onchain_logs);

-- onchain_checkpoints: one row per stream (chain, contract, event set).
CREATE OR REPLACE VIEW onchain_checkpoints AS
SELECT * FROM @source(onchain_checkpoints);

-- gmx_position_events: GMX v2 PositionIncrease/PositionDecrease with the position state after the event.
CREATE OR REPLACE VIEW gmx_position_events AS
SELECT * FROM @source(gmx_position_events);

-- gmx_adl_states: AdlStateUpdated per (market, side).
CREATE OR REPLACE VIEW gmx_adl_states AS
SELECT * FROM @source(gmx_adl_states);

-- onchain_balances: grain (chain, block_number, address, token).
CREATE OR REPLACE VIEW onchain_balances AS
SELECT * FROM @source(onchain_balances);

-- onchain_flows: grain (chain, block_number, log_index, registry_address).
CREATE OR REPLACE VIEW onchain_flows AS
SELECT * FROM @source(onchain_flows);

-- gmx_markets: grain (chain, market); one file per chain, rewritten on every read of the chain's Reader.
CREATE OR REPLACE VIEW gmx_markets AS
SELECT * FROM @source(gmx_markets);
