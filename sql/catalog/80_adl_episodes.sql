-- adl_episodes (analytics): insurance drawdowns, ADL alerts, OKX ADL types, liquidation bursts, own ADL; grain (venue, episode_id).
CREATE OR REPLACE VIEW adl_episodes AS SELECT * FROM @source(adl_episodes);
-- adl_audit (analytics): own ADL fills vs the rank the venue reported before them; grain (venue, account, fill_id).
CREATE OR REPLACE VIEW adl_audit AS SELECT * FROM @source(adl_audit);
