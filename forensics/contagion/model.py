"""A stress scenario as plain objects (what a TOML scenario file becomes after validation).

Every number may carry where it came from (``Provenance``): a published fact, an assumption, or a
lake value resolved at run time (``LakeRef``, resolved by ``pipelines/stress.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

NODE_KINDS = ("bank", "venue", "vault", "custodian", "trader", "issuer")
VENUE_KINDS = ("venue", "vault")
CONFIDENCE = ("verified", "secondary", "assumed", "lake")


@dataclass(frozen=True)
class LakeRef:
    """``from_lake = "<kind>:<venue>[:<key>][@<ISO time>]"``,
    e.g. ``vault_equity:hyperliquid:0xdfc2...@2025-10-10T21:00:00Z``."""

    ref: str
    field: str  # scenario field path, e.g. "node[hyperliquid].capital"
    fallback: float | None = None
    fallback_source: str | None = None


@dataclass
class Provenance:
    field: str
    value: float
    source: str | None = None
    confidence: str | None = None
    time: str | None = None


@dataclass
class Node:
    id: str
    kind: str = "bank"
    external_assets: float = 0.0  # cash / liquid assets outside the network
    external_liabilities: float = 0.0
    capital: float = 0.0  # venue own capital (after haircuts, before default)
    insurance_fund: float = 0.0
    bad_debt: float = 0.0  # venue: unpaid losses of accounts not listed (the rest of the market)
    profit_base: float = 0.0  # venue: positive PnL of winners not listed
    exempt_share: float = 0.0  # venue: share of the unlisted profit base exempt from ADL
    adl_rule: str = "pro_rata"  # venue: pro_rata | queue
    settlement_lag_h: dict[str, float] = field(default_factory=dict)  # custodian: per venue; venue: {"*": h}
    label: str = ""


@dataclass
class Liability:
    debtor: str
    creditor: str
    amount: float
    layer: str = "ordinary"  # ordinary | senior


@dataclass
class Asset:
    id: str
    price: float
    shock: float = 0.0  # relative move, -0.14 = -14%
    impact: float = 0.0  # fire-sale impact: d log P = -impact x signed USD sold


@dataclass
class Position:
    holder: str
    venue: str
    asset: str
    qty: float  # signed, base units
    entry: float
    collateral: float = 0.0  # margin held on the venue (0 when delegated through a custodian)


@dataclass
class Custody:
    client: str
    custodian: str
    amount: float  # what the client holds at the custodian


@dataclass
class Delegation:
    custodian: str
    client: str
    venue: str
    amount: float  # virtual margin credited on the venue, backed by the client's pot


@dataclass
class Exemption:
    venue: str
    account: str
    enabled: bool = True


@dataclass
class Freeze:
    custodian: str
    venues: tuple[str, ...]  # empty = every venue
    fraction: float = 1.0
    t_h: float = 0.0


@dataclass
class Deadline:
    venue: str
    t_h: float


@dataclass
class Scenario:
    name: str
    kind: str = "eisenberg_noe"  # eisenberg_noe | rogers_veraart
    alpha: float = 1.0
    beta: float = 1.0
    external_seniority: str = "pro_rata"
    nodes: list[Node] = field(default_factory=list)
    liabilities: list[Liability] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    custody: list[Custody] = field(default_factory=list)
    delegations: list[Delegation] = field(default_factory=list)
    exemptions: list[Exemption] = field(default_factory=list)
    freezes: list[Freeze] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    fire_sale: bool = False
    fire_sale_rounds: int = 20
    sweeps: dict[str, list[float]] = field(default_factory=dict)
    provenance: list[Provenance] = field(default_factory=list)
    lake_refs: list[LakeRef] = field(default_factory=list)
    description: str = ""

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @property
    def is_network_only(self) -> bool:
        """No perp detail: a plain interbank clearing problem."""
        return not (
            self.positions
            or self.custody
            or self.delegations
            or self.freezes
            or self.deadlines
            or any(n.kind in VENUE_KINDS for n in self.nodes)
        )

    def copy(self) -> Scenario:
        return copy.deepcopy(self)
