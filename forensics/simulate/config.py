"""Scales, noise knobs and run parameters of the cascade simulator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from forensics.formats.hyperliquid.constants import LIQUIDATOR_VAULT

#: Fixed address of the backstop liquidator vault (Hyperliquid's "HLP Liquidator").
VAULT_ADDRESS = LIQUIDATOR_VAULT

#: 2025-10-10T21:14:00 UTC in ns: snapshot time of the oct10 preset.
OCT10_START_NS = 1_760_130_840_000_000_000
OCT10_FIRST_BLOCK = 758_799_960


@dataclass(frozen=True)
class Scale:
    """Size of a run. ``trades_per_s`` is the base rate of ordinary trades (2 fills each)."""

    name: str
    n_accounts: int
    n_coins: int
    duration_s: float
    trades_per_s: float
    n_market_makers: int
    pos_per_account: float
    truth_pool_limit: int | None  # cap on pool rows stored per ADL step (None = all)
    # share of each losing vault position offloaded by ADL per block while the vault's equity is negative
    # (1 = all at once; below 1 the offload spreads over many blocks, as on 2025-10-10: ~35k ADL fills in
    # 12 minutes)
    vault_adl_share: float = 1.0


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", 200, 4, 240.0, 5.0, 4, 1.2, None),
    "small": Scale("small", 3000, 10, 480.0, 60.0, 8, 1.0, None),
    "medium": Scale("medium", 40_000, 40, 780.0, 400.0, 16, 0.6, 2000),
    "full": Scale("full", 400_000, 150, 780.0, 1200.0, 40, 0.5, 300, vault_adl_share=0.5),
}


@dataclass(frozen=True)
class Noise:
    """Observation-noise knobs (all off by default).

    * ``stale_snapshot``: blocks between the snapshot and the declared window start; the fills of those
      blocks are in the output, so a consumer must replay them.
    * ``drop_fills``: fraction of fill legs dropped from the output (never from ``truth.json``).
    * ``mark_jitter``: relative std-dev of noise on the published ``liquidation.markPx``.
    * ``clock_skew_ms``: max absolute skew added to the ``time`` of the second leg of a trade.
    """

    stale_snapshot: int = 0
    drop_fills: float = 0.0
    mark_jitter: float = 0.0
    clock_skew_ms: int = 0

    @classmethod
    def from_any(cls, noise: Noise | dict[str, Any] | None) -> Noise:
        if noise is None:
            return cls()
        if isinstance(noise, Noise):
            return noise
        unknown = set(noise) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown noise knobs: {sorted(unknown)}")
        return cls(**noise)


@dataclass(frozen=True)
class Params:
    """All parameters of one run (recorded in ``truth.json`` and ``scenario.json``)."""

    seed: int = 7
    preset: str = "oct10"
    scale: str = "small"
    policy: str = "hl_index"
    exempt: int | tuple[str, ...] = 5
    n_whales_per_exempt: int = 2  # planted large short "whales" = 5 x this (controls; exemptions chosen by dry run)
    noise: Noise = field(default_factory=Noise)
    start_ns: int = OCT10_START_NS
    first_block: int = OCT10_FIRST_BLOCK
    pre_crash_s: float = 60.0  # ordinary trading before the crash starts
    ctx_interval_s: float = 1.0
    vault_interval_s: float = 10.0
    taker_fee: float = 0.00045
    maker_fee: float = 0.00015
    maker_rebate: float = -0.00002
    vault_cash_frac: float = 0.003  # vault cash as a fraction of total long open notional
    vault_unwind: float = 0.03  # fraction of each vault position sold every 5 blocks while solvent
    fraction_isolated: float = 0.12
    wave_gap_s: float = 5.0
    real_data_root: str | None = None
    # rule switch: from the wave nearest ``switch_at`` of the cascade on, ``switch_policy`` ranks (run.generate)
    switch_policy: str | None = None
    switch_at: float | None = None
    # "skip": planted accounts are passed over; "capped": closed only to ``exempt_cap`` of the policy's take
    exempt_kind: str = "skip"
    exempt_cap: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exempt"] = list(self.exempt) if isinstance(self.exempt, tuple) else self.exempt
        return d

    def with_(self, **kw: Any) -> Params:
        return replace(self, **kw)


def make_addresses(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct deterministic 0x-addresses (40 lowercase hex digits)."""
    raw = rng.integers(0, 256, size=(n, 20), dtype=np.uint8)
    out = ["0x" + bytes(r).hex() for r in raw]
    seen: set[str] = {VAULT_ADDRESS}
    for i, a in enumerate(out):
        while a in seen:  # practically never
            a = "0x" + rng.bytes(20).hex()
        seen.add(a)
        out[i] = a
    return out
