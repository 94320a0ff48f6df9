"""Reconstruction integrity: states the data contradict or cannot confirm (lost fills) are recorded and left
out of the rule fit and the exemption test; a ghost position left by a lost ADL leg is never flagged."""

from __future__ import annotations

import polars as pl
import pytest

from forensics import simulate
from forensics.audit import RULES, audit, split_uncertain
from forensics.audit.evidence import rule_evidence
from forensics.reconstruct import integrity
from forensics.validation import truth_pools

V = "0xvault"


def _fill(user, block, idx, tid, side, sz, sp, *, adl=False, backstop=False, coin="X"):
    return {
        "user": user,
        "coin": coin,
        "time_ms": 1000 * block,
        "block_number": block,
        "event_index": idx,
        "tid": tid,
        "side": side,
        "sz": float(sz),
        "start_position": float(sp),
        "is_adl": adl,
        "liquidation_method": "backstop" if (adl or backstop) else None,
        "liquidated_user": V if (adl or backstop) else None,
    }


def _frames(drop_tid_leg: tuple[int, str] | None = (10, "a"), blocks: bool = True):
    """Snapshot at t=0: a, b, c, d short X (5, 3, 4, 4), the vault long 10. Block 1: step 0 deleverages a
    (tid 10, closes all 5) and b (tid 11, 1 of 3); c buys 1 from m. Block 2: step 1 deleverages d (tid 20).
    Block 3: c's next fill reports -1 where the replay holds -3 (a fill of c is missing)."""
    fills = [
        _fill("a", 1, 0, 10, "B", 5, -5, adl=True),
        _fill(V, 1, 1, 10, "A", 5, 10, backstop=True),
        _fill("b", 1, 2, 11, "B", 1, -3, adl=True),
        _fill(V, 1, 3, 11, "A", 1, 5, backstop=True),
        _fill("c", 1, 4, 30, "B", 1, -4),
        _fill("m", 1, 5, 30, "A", 1, 0),
        _fill("d", 2, 0, 20, "B", 1, -4, adl=True),
        _fill(V, 2, 1, 20, "A", 1, 4, backstop=True),
        _fill("c", 3, 0, 31, "B", 1, -1),
        _fill("m", 3, 1, 31, "A", 1, -1),
    ]
    # ordinary two-legged trades between other accounts (node data carry both legs of every trade)
    for i in range(12):
        fills += [_fill("p", 4, 2 * i, 100 + i, "B", 1, i), _fill("q", 4, 2 * i + 1, 100 + i, "A", 1, -i)]
    if drop_tid_leg is not None:
        fills = [f for f in fills if (f["tid"], f["user"]) != drop_tid_leg]
    f = pl.DataFrame(fills)
    if not blocks:
        f = f.with_columns(pl.lit(None, pl.Int64).alias("block_number"))
    positions = pl.DataFrame(
        {"user": ["a", "b", "c", "d", V], "coin": ["X"] * 5, "time_ms": [0] * 5, "szi": [-5.0, -3.0, -4.0, -4.0, 10.0]}
    )
    accounts = pl.DataFrame({"user": ["a", "b", "c", "d", V, "p", "q"], "time_ms": [0] * 7})
    steps = pl.DataFrame({"step_id": [0, 1], "block_number": [1, 2], "first_tid": [11, 20], "coin": ["X", "X"]})
    pools = pl.DataFrame(
        {
            "step_id": [0, 0, 0, 0, 1, 1, 1, 1],
            "user": ["a", "b", "c", "d"] * 2,
            "coin": ["X"] * 8,
            "side": ["short"] * 8,
        }
    )
    return f, positions, accounts, pools, steps


def test_lost_adl_leg_marks_the_ghost_and_contradiction_marks_the_gap():
    notes, summary = integrity.state_notes(*_frames())
    got = {(r["step_id"], r["user"]): r["state_note"] for r in notes.iter_rows(named=True)}
    assert summary["two_sided"] and summary["lost_legs"] == 1
    # a's position was closed by the lost leg (tid 10, exactly its size): a ghost in both later pools
    assert got[(0, "a")] == integrity.LOST_LEG and got[(1, "a")] == integrity.LOST_LEG
    # c's replayed state between its two fills disagrees with what its next fill reports
    assert got[(1, "c")] == integrity.CONTRADICTED
    # b and d are confirmed by their own fills: never marked
    assert not {k for k in got if k[1] in {"b", "d"}}
    assert "tid 10" in notes.filter(pl.col("user") == "a")["state_detail"][0]


def test_nothing_lost_nothing_marked_but_contradictions():
    notes, summary = integrity.state_notes(*_frames(drop_tid_leg=None))
    assert summary["lost_legs"] == 0
    assert set(notes["user"]) == {"c"}


def test_one_sided_data_get_no_lost_leg_matching():
    # fills without block numbers (an info-API pull) are not two-sided by construction
    notes, summary = integrity.state_notes(*_frames(blocks=False))
    assert not summary["two_sided"]
    assert integrity.LOST_LEG not in set(notes["state_note"])


@pytest.fixture(scope="module")
def bitmex_truth(tmp_path_factory):
    out = tmp_path_factory.mktemp("bitmex-0-small")
    simulate.generate(out, scale="small", policy="bitmex", exempt=0, seed=7)
    return truth_pools(out / "truth.json")


def _with_ghost(pools: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Keep the top-ranked account that a step closed in full in every later step of the coin and side, as
    a replay that lost its ADL leg would (never selected again)."""
    full = pools.filter(pl.col("selected") & (pl.col("closed_size") >= pl.col("size") * (1 - 1e-9)))
    later = pools.group_by("coin", "side").agg(pl.col("step_id").unique().alias("ids"))
    best = None
    for r in full.sort("true_score", descending=True).iter_rows(named=True):
        ids = [
            s
            for s in later.filter((pl.col("coin") == r["coin"]) & (pl.col("side") == r["side"]))["ids"][0]
            if s > r["step_id"]
        ]
        if len(ids) >= 4 and not pools.filter(pl.col("user") == r["user"], pl.col("step_id").is_in(ids)).height:
            best = (r, ids)
            break
    assert best is not None
    r, ids = best
    ghost = pl.DataFrame(
        [{**r, "step_id": s, "selected": False, "fill_order": None, "closed_size": 0.0, "partial": False} for s in ids],
        schema=pools.schema,
    )
    return pl.concat([pools, ghost]), r["user"]


def test_ghost_rows_with_a_state_note_are_left_out_and_not_flagged(bitmex_truth):
    pools, ghost = _with_ghost(bitmex_truth)
    plain = audit(pools)
    assert ghost in set(plain.exemption.flagged["user"])  # what a lost leg did before the integrity check
    noted = pools.with_columns(
        state_note=pl.when((pl.col("user") == ghost) & ~pl.col("selected")).then(pl.lit(integrity.LOST_LEG)),
        state_detail=pl.lit(None, pl.Utf8),
    )
    result = audit(noted)
    assert result.exemption.flagged.height == 0
    assert ghost not in result.exemption.evidence  # its unconfirmed rows are excused, never opportunities
    ev = result.inference.evidence.rows[result.inference.best_rule]
    assert not ev.filter((pl.col("user") == ghost) & ~pl.col("selected") & pl.col("opportunity")).height
    assert result.uncertain is not None and set(result.uncertain["user"]) == {ghost}
    vouched, uncertain = split_uncertain(noted)
    assert vouched.height + uncertain.height == noted.height


def test_wealth_pro_rata_falls_back_to_contracts_when_nobody_cut_is_in_profit():
    # action 0: winners cut by positive uPnL; action 1: nobody in profit, cut by contracts
    rows = []
    for u, size, upnl, closed in (
        ("a", 10, 30.0, 6.0),
        ("b", 10, 10.0, 2.0),
        ("c", 10, 20.0, 4.0),
        ("d", 5, -1.0, 0.0),
    ):
        rows.append({"step_id": 0, "user": u, "size": float(size), "upnl_usd": upnl, "closed_size": closed})
    for u, size, upnl, closed in (
        ("a", 10, -3.0, 2.0),
        ("b", 20, -1.0, 4.0),
        ("c", 30, -2.0, 6.0),
        ("d", 5, -1.0, 1.0),
    ):
        rows.append({"step_id": 1, "user": u, "size": float(size), "upnl_usd": upnl, "closed_size": closed})
    pools = pl.DataFrame(rows).with_columns(selected=pl.col("closed_size") > 0, lot_size=pl.lit(1.0), coin=pl.lit("X"))
    wealth = rule_evidence(pools, RULES["wealth_pro_rata"])
    assert not wealth["skip"].any() and not wealth["shape_violation"].any()
    contracts = rule_evidence(pools, RULES["contracts_pro_rata"])
    assert contracts.filter(pl.col("step_id") == 0)["shape_violation"].any()  # action 0 separates them


def test_validation_row_reports_integrity_and_markdown_explains_it():
    from pipelines.analysis import validation

    row = validation.run_scenario("hl_index", 0, "moderate", 11, "tiny")
    assert {"lost_legs", "uncertain_rows", "pool_rows"} <= set(row)
    assert row["lost_legs"] >= 0 and row["uncertain_rows"] <= row["pool_rows"]
    text = validation.markdown(pl.DataFrame([row]), "liqf validate --scale tiny --seeds 1")
    assert "state_unconfirmed_lost_leg" in text and "rows left out" in text


def test_flag_evidence_lists_the_excused_rows_with_their_reason():
    from forensics.audit.exemption import skip_evidence

    ev = pl.DataFrame(
        {
            "step_id": [3, 4, 5],
            "user": ["u", "u", "v"],
            "coin": ["X"] * 3,
            "rank": [1, 1, 1],
            "cut_rank": [2, 3, 2],
            "selected": [False] * 3,
            "skip": [False, True, True],
            "state_note": [integrity.CONTRADICTED, None, None],
            "state_detail": ["gap", None, None],
        }
    )
    out = skip_evidence(ev, ["u"])
    assert set(out) == {"u"}
    first, second = out["u"]
    assert first["step_id"] == 4 and first["counted_as_skip"]  # skips first
    assert not second["counted_as_skip"] and second["state_note"] == integrity.CONTRADICTED
