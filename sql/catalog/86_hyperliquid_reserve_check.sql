-- hyperliquid_reserve_check: per Hyperliquid bridge balance read (role 'bridge', venue 'hyperliquid'),
-- the bridge's USDC against the sum of account values of the position snapshot nearest in time.
-- A snapshot is one input (source_key) of account_snapshots; its time is the latest time_ms in it.
-- Caveat: a snapshot of tracked accounts covers only those accounts, so accounts_usd is a lower bound
-- of what users are owed; surplus_usd = bridge_usdc - accounts_usd.
CREATE OR REPLACE VIEW hyperliquid_reserve_check AS
WITH bridge AS (
    SELECT chain, block_number, time, time_ms, address, label, balance AS bridge_usdc
    FROM onchain_balances
    WHERE venue = 'hyperliquid' AND role = 'bridge' AND token_symbol = 'USDC'
), snaps AS (
    SELECT source_key, max(time_ms) AS snapshot_ms, count(*) AS accounts, sum(account_value) AS accounts_usd
    FROM account_snapshots
    WHERE venue = 'hyperliquid'
    GROUP BY source_key
), paired AS (
    SELECT b.*, s.snapshot_ms, s.accounts, s.accounts_usd, s.source_key AS snapshot_key,
           row_number() OVER (PARTITION BY b.chain, b.block_number, b.address
                              ORDER BY abs(s.snapshot_ms - b.time_ms), s.source_key) AS rn
    FROM bridge b LEFT JOIN snaps s ON true
)
SELECT chain, block_number, time, time_ms, address, label, bridge_usdc, snapshot_key, snapshot_ms,
       snapshot_ms - time_ms AS snapshot_lag_ms, accounts, accounts_usd,
       bridge_usdc - accounts_usd AS surplus_usd
FROM paired
WHERE rn = 1;
