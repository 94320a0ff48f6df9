"""Perpetual-futures liquidation cascade simulator with a known ADL rule and planted exemptions.

Outputs are written in Hyperliquid's public formats (see ``writer``) and serve as ground truth for the
forensic tests. Public API: :func:`generate`, :data:`POLICIES`, :data:`SCALES`.
"""

from __future__ import annotations

from .config import SCALES, VAULT_ADDRESS, Noise, Params
from .policies import POLICIES
from .run import generate

__all__ = ["generate", "POLICIES", "SCALES", "Noise", "Params", "VAULT_ADDRESS"]
