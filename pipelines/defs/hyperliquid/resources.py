"""Typed resources for Hyperliquid: the info API client and the node-data directory."""

import os
from pathlib import Path

import dagster as dg

from pipelines.defs.lake.resources import PROJECT_ROOT
from pipelines.storage import StoreSettings, inputs, transfer
from pipelines.storage.location import is_object_url, parse_url
from pipelines.storage.stores import StorageError, open_store, storage_error
from pipelines.venues.base import WeightRateLimiter
from pipelines.venues.hyperliquid import HyperliquidInfoClient


class HyperliquidInfoResource(dg.ConfigurableResource):
    """The Hyperliquid info API (``POST {base_url}/info``); point ``base_url`` at the local venue server in tests."""

    base_url: str = os.environ.get("LIQF_HYPERLIQUID_URL", "https://api.hyperliquid.xyz")
    timeout_s: float = 10.0
    max_retries: int = 5
    # the venue's documented budget; the embedded demo raises it against its own local server only
    weight_per_minute: float = 1200

    def client(self) -> HyperliquidInfoClient:
        return HyperliquidInfoClient(
            self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            rate_limiter=WeightRateLimiter(self.weight_per_minute),
        )


class HyperliquidNodeDataResource(dg.ConfigurableResource):
    """A directory (or ``s3://`` bucket and prefix) in the node's layout: ``node_fills_by_block/hourly/YYYYMMDD/H.lz4``,
    ``snapshots/*.jsonl`` (clearinghouseState per user), ``asset_ctxs/*.jsonl``."""

    root: str = os.environ.get("LIQF_NODE_DATA", str(PROJECT_ROOT / "data" / "node"))
    endpoint: str | None = os.environ.get("LIQF_NODE_DATA_ENDPOINT")  # S3-compatible endpoint of an s3:// root
    requester_pays: bool = True  # Hyperliquid's buckets are requester-pays

    def hour_file(self, partition_key: str, lake) -> Path | None:
        """The ``node_fills_by_block`` file of one hourly partition (``YYYY-MM-DD-HH:00``), downloaded
        into the lake's raw layer first when the root is ``s3://``; None when the hour has no file."""
        day, hour = partition_key[:10].replace("-", ""), int(partition_key[11:13])
        relative = f"node_fills_by_block/hourly/{day}/{hour}.lz4"
        if not is_object_url(self.root):
            path = Path(self.root) / relative
            return path if path.is_file() else None

        settings = StoreSettings(endpoint=self.endpoint, requester_pays=self.requester_pays)
        url = parse_url(self.root)
        try:
            if transfer.head(open_store(url, settings), relative) is None:
                return None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one line, naming the object
            raise storage_error(exc, url.url(relative), settings) from None
        return inputs.resolve([url.url(relative)], lake.root / "raw" / "venue=hyperliquid" / "source=s3", settings)[0]

    def fill_files(self, day: str) -> list[Path]:
        folder = Path(self.root) / "node_fills_by_block" / "hourly" / day.replace("-", "")
        return sorted(p for p in folder.glob("*") if p.is_file() and p.suffix in (".lz4", ".json", ".jsonl"))

    def files(self, sub: str) -> list[Path]:
        return sorted((Path(self.root) / sub).glob("*.jsonl"))


class TrackedUsersResource(dg.ConfigurableResource):
    """The accounts the scheduled API pull follows: a file with one 0x address per line."""

    users_file: str = os.environ.get(
        "LIQF_TRACKED_USERS", str(PROJECT_ROOT / "pipelines" / "config" / "tracked_users.txt")
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "hyperliquid_info": HyperliquidInfoResource(),
            "hyperliquid_node_data": HyperliquidNodeDataResource(),
            "tracked_users": TrackedUsersResource(),
        }
    )
