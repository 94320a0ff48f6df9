"""The CEX Dagster assets materialize one day against the local venue server (public + own account)."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.cex.assets import VENUE_ASSETS, cex_adl_episodes
from pipelines.defs.cex.resources import CexApiResource, CexCredentialsResource
from pipelines.defs.lake.resources import LakeResource
from pipelines.sandbox.venue_server import Scenario, serve
from pipelines.sandbox.venue_server.cex import Account, cex_routes, generate

DAY_MS = 1_760_054_400_000  # 2025-10-10T00:00:00Z


def test_cex_assets_materialize(tmp_path):
    data = generate(DAY_MS + 3_600_000, 6, accounts=[Account("okx", "k1", "s1", "p1")])
    with serve(Scenario(root=tmp_path / "hl"), routes=cex_routes(data), rate_limit_per_minute=None) as srv:
        api = CexApiResource(
            **{f"{v}_url": srv.base_url for v in ("binance", "bybit", "okx", "bitmex", "deribit", "dydx")}
        )
        res = dg.materialize(
            [*VENUE_ASSETS, cex_adl_episodes],
            partition_key="2025-10-10",
            resources={
                "lake": LakeResource(lake_root=str(tmp_path / "lake"), db_path=str(tmp_path / "db.duckdb")),
                "cex_api": api,
                "cex_credentials": CexCredentialsResource(
                    okx_api_key="k1", okx_api_secret="s1", okx_api_passphrase="p1"
                ),
            },
            selection=[
                a.key for a in VENUE_ASSETS if a.key.path[0] in ("okx_liquidation_data", "deribit_liquidation_data")
            ],
        )
    assert res.success
    mats = {m.asset_key.path[0]: m for m in res.get_asset_materialization_events()}
    okx = mats["okx_liquidation_data"].materialization.metadata
    assert okx["private"].value is True and okx["records_written"].value > 250
