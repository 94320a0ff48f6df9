"""The reconstruction benchmark's per-event baseline does the product's job: both give the same tables.

Two independent implementations (a dict-per-position loop and the vectorised replay) agreeing on noisy
scenarios is also a check of the product beyond planted truth: stale snapshots, dropped fills, users
without a snapshot (anchored on startPosition), fills without block order, stale marks.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from dataclasses import replace

import polars as pl
import pytest

from forensics.reconstruct import build_steps_and_pools
from forensics.simulate import VAULT_ADDRESS, generate
from pipelines.analysis.inputs import VenueInputs, load_inputs
from pipelines.ingest.hyperliquid.files import ingest_asset_ctxs, ingest_node_fills, ingest_snapshot
from pipelines.lake import Lake
from tests.conftest import PROJECT_ROOT

warnings.filterwarnings("ignore", message="Sortedness")
_spec = importlib.util.spec_from_file_location("replay_baseline", PROJECT_ROOT / "bench" / "replay_baseline.py")
baseline = sys.modules["replay_baseline"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(baseline)

NOISE = {"stale_snapshot": 20, "drop_fills": 0.01, "mark_jitter": 0.001, "clock_skew_ms": 50}


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    root = tmp_path_factory.mktemp("baseline")
    generate(root / "scen", scale="tiny", exempt=5, policy="hl_index", seed=13, noise=NOISE)
    lake = Lake(root / "lake")
    for f in sorted((root / "scen" / "node_fills_by_block").rglob("*.lz4")):
        ingest_node_fills(lake, f)
    ingest_snapshot(lake, root / "scen" / "snapshots" / "clearinghouse_state.jsonl")
    ingest_asset_ctxs(lake, root / "scen" / "asset_ctxs" / "asset_ctxs.jsonl")
    return load_inputs(lake)


def _both(inputs: VenueInputs, **kw):
    args = (inputs.fills, inputs.positions, inputs.accounts, inputs.asset_ctxs)
    return build_steps_and_pools(*args, vault=VAULT_ADDRESS, **kw), baseline.steps_and_pools(
        *args, vault=VAULT_ADDRESS, **kw
    )


def _assert_same(product, base):
    (s1, p1), (s2, p2) = product, base
    assert p1.height > 100 and s1.height > 5
    assert baseline.compare(s1, s2) == {}
    assert baseline.compare(p1.drop(baseline.PRODUCT_ONLY_COLUMNS), p2) == {}


def test_same_tables_on_a_noisy_scenario(noisy):
    product, base = _both(noisy)
    _assert_same(product, base)
    pools = product[1]
    assert (pools["margin_mode"] == "isolated").any() and pools["position_age_ms"].is_not_null().any()


def test_same_tables_for_users_without_snapshot_and_stale_marks(noisy):
    """A third of the accounts lose their snapshot: their positions start from startPosition anchors."""
    dropped = noisy.accounts["user"].unique().sort().gather_every(3)
    inputs = replace(
        noisy,
        accounts=noisy.accounts.filter(~pl.col("user").is_in(dropped.implode())),
        positions=noisy.positions.filter(~pl.col("user").is_in(dropped.implode())),
    )
    product, base = _both(inputs, max_mark_age_ms=1_000)
    _assert_same(product, base)
    assert product[1]["entry_px"].is_nan().any()  # anchored positions: entry unknown


def test_same_tables_without_block_order(noisy):
    """Info-API fills: no block number, replay by (time, tid), same-millisecond opens are flagged."""
    inputs = replace(noisy, fills=noisy.fills.with_columns(pl.lit(None, pl.Int64).alias("block_number")))
    product, base = _both(inputs)
    _assert_same(product, base)


def test_compare_reports_differences(noisy):
    _, pools = build_steps_and_pools(
        noisy.fills, noisy.positions, noisy.accounts, noisy.asset_ctxs, vault=VAULT_ADDRESS
    )
    nudged = pools.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.col("account_value_usd") * (1 + 1e-6))
        .otherwise(pl.col("account_value_usd"))
        .alias("account_value_usd")
    )
    assert baseline.compare(pools, nudged) == {"account_value_usd": 1}
    assert baseline.compare(pools, pools.head(-1)) == {"rows": 1}


def test_same_skip_reasons_on_hand_built_cases():
    """Below minimum size, isolated without overlap, and opened in the step's millisecond (no block order)."""
    from tests.integration.test_reconstruct import _adl, _snap

    step = _adl("0xa", "ETH", None, None, 20, "B", 1.0, 1_000, px=10.0, mark=9.0)
    opener = {
        **_adl("0xn", "ETH", None, None, 10, "A", 1.0, 1_000),
        "is_adl": False,
        "liquidated_user": None,
        "liquidation_mark_px": None,
    }
    fills = pl.DataFrame([step, opener]).with_columns(pl.col("sz").cast(pl.Decimal(38, 10)))
    pos, acc = _snap(
        [
            ("0xa", "ETH", -5.0, 12.0, "cross", 0.0),
            ("0xi", "ETH", -2.0, 9.9, "isolated", 0.1),
            ("0xt", "ETH", -0.001, 12.0, "cross", 0.0),
            ("0xn", "ETH", 0.0, 0.0, "cross", 0.0),
        ]
    )
    ctx = pl.DataFrame([{"coin": "ETH", "time_ms": 500, "mark_px": 9.0, "max_leverage": 10, "sz_decimals": 2}])
    args = (fills, pos.filter(pl.col("user") != "0xn"), acc, ctx)
    s1, p1 = build_steps_and_pools(*args, vault="0xvault", min_account_value=None)
    s2, p2 = baseline.steps_and_pools(*args, vault="0xvault", min_account_value=None)
    assert dict(zip(p1["user"], p1["skip_reason"])) == {
        "0xa": None,
        "0xi": "isolated_no_overlap",
        "0xt": "below_min_size",
        "0xn": "opened_same_block",
    }
    assert baseline.compare(s1, s2) == {} and baseline.compare(p1.drop(baseline.PRODUCT_ONLY_COLUMNS), p2) == {}
