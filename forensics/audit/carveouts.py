"""Carve-outs a venue discloses: documented reasons why an account, or a whole instrument, is not
auto-deleveraged. A flag they cover is not an exemption and is reported apart, with the carve-out that covers
it.

Each :class:`CarveOut` is data: the venue, the instruments (patterns on the venue's own symbols, as the lake's
``coin`` column holds them), the validity window, the condition it needs (a fact the caller supplies, or
none), the source and the sentence quoted from it. Pure: no I/O, no clock. Sources were read in stored copies
of the public pages (2026-12); what could not be confirmed is said in ``unconfirmed``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fnmatch import fnmatchcase

#: the venue runs no ADL on the instruments while the carve-out holds (losses go elsewhere)
NO_ADL = "no_adl"
#: the venue's rule lets its walk pass an account over for a stated reason
SKIP_ALLOWED = "skip_allowed"
#: conditions a carve-out can need (the fact the caller passes to :func:`covering`)
OPEN_INTEREST = "open_interest"
BANKRUPTCY_OVERLAP = "bankruptcy_prices_overlap"


def _ms(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() * 1000)


@dataclass(frozen=True)
class CarveOut:
    """One disclosed carve-out. ``instruments``: shell-style patterns (``fnmatch``, upper case) on the venue's
    symbol. ``valid_from_ms``/``valid_to_ms``: the half-open window in which the disclosure stands (None: not
    known to start or end). ``condition``: None, :data:`OPEN_INTEREST` (holds while the open interest the
    caller gives is at most ``max_open_interest_usd``) or :data:`BANKRUPTCY_OVERLAP` (holds for an account
    whose bankruptcy price does not overlap the liquidated one's)."""

    name: str
    venue: str
    instruments: tuple[str, ...]
    effect: str
    summary: str
    source: str
    quote: str
    valid_from_ms: int | None = None
    valid_to_ms: int | None = None
    condition: str | None = None
    max_open_interest_usd: float | None = None
    unconfirmed: str = ""

    def applies_to(self, venue: str, coin: str, time_ms: int) -> bool:
        """Whether the venue, instrument and time are within the carve-out's scope (its condition aside)."""
        if venue.lower() != self.venue:
            return False
        if self.valid_from_ms is not None and time_ms < self.valid_from_ms:
            return False
        if self.valid_to_ms is not None and time_ms >= self.valid_to_ms:
            return False
        symbol = coin.upper()
        return any(fnmatchcase(symbol, pattern) for pattern in self.instruments)

    def holds(self, *, open_interest_usd: float | None = None, bankruptcy_prices_overlap: bool | None = None) -> bool:
        """Whether the condition is met by the facts given; a condition whose fact is not given is not met."""
        if self.condition == OPEN_INTEREST:
            cap = self.max_open_interest_usd
            return open_interest_usd is not None and cap is not None and open_interest_usd <= cap
        if self.condition == BANKRUPTCY_OVERLAP:
            return bankruptcy_prices_overlap is False
        return True


CARVE_OUTS: tuple[CarveOut, ...] = (
    CarveOut(
        name="binance_adl_guarantee",
        venue="binance",
        # BTCBUSD and the quarterlies as listed; quarterlies carry the delivery date (BTCUSDT_250926)
        instruments=("BTCUSDT", "BTCUSDT_*", "BTCBUSD", "ETHUSDT", "ETHUSDT_*", "BNBUSDT"),
        effect=NO_ADL,
        summary="No ADL on BTC, ETH and BNB USDⓈ-M contracts while their total open interest is at most 4B USDT; "
        "ADL losses compensated from each contract's insurance fund.",
        source="https://www.binance.com/en/support/announcement/8ca05ebf2dcd4e2cbf5a7d2a313ab492",
        quote="Binance Futures guarantees that there will be no auto deleveraging (ADL) incident(s) when users "
        "trade BTC, ETH, and BNB USDⓈ-M Futures Contracts listed below if the total open interest of the "
        "following contracts does not exceed 4 billion USDT",
        valid_from_ms=_ms("2021-03-02"),
        condition=OPEN_INTEREST,
        max_open_interest_usd=4e9,
        unconfirmed="The open interest is the listed contracts' total as Binance updates it daily at 00:00 UTC "
        "(the caller passes that figure). The announcement (2021-03-02 11:45, time zone not stated: the window "
        "starts at that day's 00:00 UTC) lists BTCUSDT/ETHUSDT Quarterly 0326 and says it applies to all later "
        "BTCUSDT and ETHUSDT quarterlies; no withdrawal or end date was found, and BTCBUSD's delisting date is "
        "not pinned.",
    ),
    CarveOut(
        name="aevo_majors_not_under_adl",
        venue="aevo",
        instruments=("BTC", "BTC-*", "ETH", "ETH-*", "SOL", "SOL-*"),
        effect=NO_ADL,
        summary="Options and perpetuals on BTC, ETH and SOL are not under ADL (an instrument-level exclusion).",
        source="https://docs.aevo.xyz/aevo-exchange/technical-architecture/auto-deleveraging-adl",
        quote="Options and perps on majors (BTC, ETH, SOL) are currently not under ADL.",
        unconfirmed="The page says 'currently' and carries no date: the window is open at both ends.",
    ),
    CarveOut(
        name="dydx_non_overlapping_bankruptcy_price",
        venue="dydx",
        instruments=("*",),
        effect=SKIP_ALLOWED,
        summary="The deleveraging walk passes over an offsetting subaccount when the two bankruptcy prices do not "
        "overlap (processing the fill fails), and goes on to the next.",
        source="https://github.com/dydxprotocol/v4-chain/blob/002f3fa4d40298f805b4d10f10141d3e6be65096/protocol/"
        "x/clob/keeper/deleveraging.go",
        quote="If an error is returned, it's likely because the subaccounts' bankruptcy prices do not overlap. "
        "TODO(CLOB-75): Support deleveraging subaccounts with non overlapping bankruptcy prices.",
        condition=BANKRUPTCY_OVERLAP,
        unconfirmed="A code comment in OffsetSubaccountPerpetualPosition (the walk counts such accounts in "
        "numSubaccountsWithNonOverlappingBankruptcyPrices), not user documentation; present at the commit "
        "cited, its first and last versions not pinned.",
    ),
)


def applicable(venue: str, coin: str, time_ms: int) -> list[CarveOut]:
    """Every carve-out whose venue, instruments and window cover ``coin`` at ``time_ms``, whether or not its
    condition is known to hold (what a report can list as "could be covered if ...")."""
    return [c for c in CARVE_OUTS if c.applies_to(venue, coin, time_ms)]


def covering(
    venue: str,
    coin: str,
    time_ms: int,
    *,
    open_interest_usd: float | None = None,
    bankruptcy_prices_overlap: bool | None = None,
) -> CarveOut | None:
    """The disclosed carve-out that covers ``coin`` on ``venue`` at ``time_ms`` given the facts passed (the
    listed contracts' total open interest in USD; whether an account's bankruptcy price overlaps the liquidated
    one's), or None. A condition whose fact is not given does not hold."""
    for c in applicable(venue, coin, time_ms):
        if c.holds(open_interest_usd=open_interest_usd, bankruptcy_prices_overlap=bankruptcy_prices_overlap):
            return c
    return None
