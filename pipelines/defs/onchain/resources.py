"""Typed resources for EVM chains: the JSON-RPC endpoint of one chain (URL from the environment)."""

import dagster as dg

from pipelines.ingest.onchain import ChainRegistry, load_registry
from pipelines.venues.evm import EvmRpc, HttpTransport


class EvmChainResource(dg.ConfigurableResource):
    """One chain of ``pipelines/config/registry/<chain>.toml`` and its JSON-RPC URL.

    The URL usually carries a provider key, so it comes from an environment variable
    (``LIQF_RPC_ARBITRUM`` by default, via ``dg.EnvVar``) and is only ever logged redacted."""

    chain: str = "arbitrum"
    rpc_url: str = ""
    timeout_s: float = 30.0
    include_unverified: bool = False
    registry_file: str = ""  # a user's own registry over the shipped one (LIQF_REGISTRY)

    def registry(self) -> ChainRegistry:
        return load_registry(
            self.chain, include_unverified=self.include_unverified, user_file=self.registry_file or None
        )

    def rpc(self) -> EvmRpc:
        if not self.rpc_url:
            raise dg.Failure(f"no JSON-RPC URL for {self.chain}: set LIQF_RPC_{self.chain.upper()}")
        return EvmRpc(HttpTransport(self.rpc_url, timeout=self.timeout_s), max_range=self.registry().max_range)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "arbitrum_rpc": EvmChainResource(
                chain="arbitrum",
                rpc_url=dg.EnvVar("LIQF_RPC_ARBITRUM").get_value(""),
                registry_file=dg.EnvVar("LIQF_REGISTRY").get_value(""),
            )
        }
    )
