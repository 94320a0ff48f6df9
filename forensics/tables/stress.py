"""Tables of the contagion stress test; collected into forensics.tables.ALL_TABLES.

Written by ``pipelines/stress.py`` (``forensics.contagion``) with :meth:`Lake.replace_source`, one file
per scenario (re-running a scenario replaces its rows). Amounts are USD (or the scenario's unit);
definitions in docs/contagion.md.
"""

from __future__ import annotations

from forensics.tables.model import UNIQUE, Column, Table

C = Column

_RUN = (
    C("run_id", "VARCHAR", "Stable id of the scenario file run (scenario name + content hash).", False),
    C("scenario", "VARCHAR", "Scenario name ([model].name or the file stem).", False),
)

STRESS_RUNS = Table(
    "stress_runs",
    "One row per scenario run: model, inputs with their sources, outcome totals.",
    _RUN
    + (
        C("scenario_sha256", "VARCHAR", "SHA-256 of the scenario file.", False),
        C("path", "VARCHAR", "Scenario file as given."),
        C("model", "VARCHAR", "'eisenberg_noe' or 'rogers_veraart' (alpha, beta in params_json).", False),
        C("params_json", "VARCHAR", "Model parameters (JSON).", False),
        C("code_version", "VARCHAR", "liquidation-forensics version and git commit.", False),
        C("run_time", "TIMESTAMP", "When the run finished (UTC).", False),
        C("nodes", "BIGINT", "Nodes in the cleared network (incl. custody pots).", False),
        C("defaults", "BIGINT", "Nodes in default at the end (any cause).", False),
        C("venue_defaults", "BIGINT", "Venues whose senior layer was not paid in full.", False),
        C("max_haircut", "DOUBLE", "Largest haircut of winners' profit over venues (0-1).", False),
        C("total_shortfall", "DOUBLE", "Sum over venues of bad debt not covered by the insurance fund.", False),
        C("fire_sale_rounds", "BIGINT", "Outer fire-sale rounds run.", False),
        C("oscillation", "BOOLEAN", "The fire-sale loop revisited an earlier default set.", False),
        C(
            "inputs_json",
            "VARCHAR",
            "Every sourced or lake-resolved input: field, value, source, confidence, time (JSON).",
            False,
        ),
    ),
    key=("run_id",),
    layer="analytics",
    dedup=UNIQUE,
)

STRESS_DEFAULTS = Table(
    "stress_defaults",
    "One row per defaulted node of a scenario run: contagion round and cause.",
    _RUN
    + (
        C("node", "VARCHAR", "Node id (custody pots are '<custodian>/<client>').", False),
        C("kind", "VARCHAR", "bank, venue, vault, custodian, trader, issuer or pot.", False),
        C("round", "BIGINT", "Contagion round in which the node first defaulted (1 = first).", False),
        C("cause", "VARCHAR", "solvency, cascade, liquidity, freeze, custody or fire_sale.", False),
        C("outer_step", "BIGINT", "Outer iteration (liquidity / fire-sale) in which it first defaulted.", False),
        C("equity", "DOUBLE", "External assets + received - obligations after clearing.", False),
        C("recovery", "DOUBLE", "Paid / owed (1 for liquidity defaults that paid their other debts).", False),
        C("venues", "VARCHAR", "Venues where a liquidity default liquidated it (comma-separated)."),
    ),
    key=("run_id", "node"),
    layer="analytics",
    dedup=UNIQUE,
)

STRESS_VENUES = Table(
    "stress_venues",
    "One row per venue of a scenario run: the waterfall insurance fund -> haircut -> venue capital.",
    _RUN
    + (
        C("venue", "VARCHAR", "Venue node id.", False),
        C("kind", "VARCHAR", "'venue' or 'vault' (HLP-type backstop).", False),
        C(
            "bad_debt",
            "DOUBLE",
            "D_v: unpaid losses (unlisted accounts + listed losers' unpaid + frozen settlement).",
            False,
        ),
        C("insurance_fund", "DOUBLE", "IF_v after the insurance scale (a vault's backstop capital).", False),
        C("insurance_used", "DOUBLE", "min(IF_v, D_v).", False),
        C("shortfall", "DOUBLE", "S_v = D_v - insurance used.", False),
        C("profit_base", "DOUBLE", "B_v: non-exempt winners' profit (haircut base).", False),
        C("haircut", "DOUBLE", "h_v = 1 - junior recovery (= min(1, S_v / B_v)).", False),
        C("residual", "DOUBLE", "R_v = max(0, S_v - B_v), hits venue capital.", False),
        C("capital", "DOUBLE", "K_v.", False),
        C("capital_used", "DOUBLE", "min(K_v, R_v).", False),
        C("defaulted", "BOOLEAN", "R_v > K_v: senior claims not paid in full.", False),
        C("frozen_settlement", "DOUBLE", "Settlement a frozen custodian did not pay to the venue.", False),
        C("exempt_share", "DOUBLE", "x_v: exempt share of winners' profit.", False),
        C("exempt_transfer", "DOUBLE", "h_v x exempt profit: what exemption shifted onto the others.", False),
        C("critical_exempt_share", "DOUBLE", "x* above which the venue defaults (NULL: none in [0, 1))."),
    ),
    key=("run_id", "venue"),
    layer="analytics",
    dedup=UNIQUE,
)

STRESS_SWEEPS = Table(
    "stress_sweeps",
    "One row per sweep point of a scenario run: parameters and outcome measures.",
    _RUN
    + (
        C("sweep", "VARCHAR", "Sweep name.", False),
        C("point", "BIGINT", "0-based point index within the sweep.", False),
        C("param_1", "VARCHAR", "First swept parameter.", False),
        C("value_1", "DOUBLE", "Its value.", False),
        C("param_2", "VARCHAR", "Second swept parameter (NULL for one-parameter sweeps)."),
        C("value_2", "DOUBLE", "Its value."),
        C("params_json", "VARCHAR", "All swept parameters of the point (JSON).", False),
        C("defaults", "BIGINT", "Nodes in default.", False),
        C("venue_defaults", "BIGINT", "Venues in default.", False),
        C("max_haircut", "DOUBLE", "Largest venue haircut.", False),
        C("shortfall", "DOUBLE", "Sum of venue shortfalls.", False),
        C("defaulted", "VARCHAR", "Defaulted nodes (comma-separated, contagion order)."),
    ),
    key=("run_id", "sweep", "point"),
    layer="analytics",
    dedup=UNIQUE,
)

TABLES: dict[str, Table] = {t.name: t for t in (STRESS_RUNS, STRESS_DEFAULTS, STRESS_VENUES, STRESS_SWEEPS)}
