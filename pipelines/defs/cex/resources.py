"""Typed resources for the CEX venues: REST endpoints and (read-only) API keys from the environment."""

import os

import dagster as dg

from pipelines.ingest import cex
from pipelines.venues.base import VenueHTTPClient
from pipelines.venues.signing import ApiCredentials


def _url(venue: str) -> str | None:
    return os.environ.get(f"LIQF_{venue.upper()}_URL") or None


class CexApiResource(dg.ConfigurableResource):
    """Base URLs of the venues' REST APIs (None = the venue's public API); point them at the local venue server
    in tests."""

    binance_url: str | None = _url("binance")
    bybit_url: str | None = _url("bybit")
    okx_url: str | None = _url("okx")
    bitmex_url: str | None = _url("bitmex")
    deribit_url: str | None = _url("deribit")
    dydx_url: str | None = _url("dydx")
    timeout_s: float = 10.0
    max_retries: int = 5

    def client(self, venue: str, credentials: ApiCredentials | None = None) -> VenueHTTPClient:
        return cex.make_client(
            venue,
            getattr(self, f"{venue}_url"),
            credentials=credentials,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
        )


class CexCredentialsResource(dg.ConfigurableResource):
    """Read-only API keys, set from the environment with ``dg.EnvVar`` (never in config files or logs)."""

    binance_api_key: str = ""
    binance_api_secret: str = ""
    bybit_api_key: str = ""
    bybit_api_secret: str = ""
    okx_api_key: str = ""
    okx_api_secret: str = ""
    okx_api_passphrase: str = ""

    def credentials(self, venue: str) -> ApiCredentials | None:
        key, secret = getattr(self, f"{venue}_api_key", ""), getattr(self, f"{venue}_api_secret", "")
        if not key or not secret:
            return None
        return ApiCredentials(key, secret, getattr(self, f"{venue}_api_passphrase", "") or None)


def _env(name: str) -> object:
    # dg.EnvVar resolves at run launch; unset variables resolve to "" so public assets still run
    return dg.EnvVar(name) if os.environ.get(name) else ""


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "cex_api": CexApiResource(),
            "cex_credentials": CexCredentialsResource(
                binance_api_key=_env("LIQF_BINANCE_API_KEY"),
                binance_api_secret=_env("LIQF_BINANCE_API_SECRET"),
                bybit_api_key=_env("LIQF_BYBIT_API_KEY"),
                bybit_api_secret=_env("LIQF_BYBIT_API_SECRET"),
                okx_api_key=_env("LIQF_OKX_API_KEY"),
                okx_api_secret=_env("LIQF_OKX_API_SECRET"),
                okx_api_passphrase=_env("LIQF_OKX_API_PASSPHRASE"),
            ),
        }
    )
