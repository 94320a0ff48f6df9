-- policy_counterfactuals: analytics output of the accounting (forensics/accounting, docs/accounting.md).
CREATE OR REPLACE VIEW policy_counterfactuals AS
SELECT * FROM @source(policy_counterfactuals);
