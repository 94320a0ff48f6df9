"""The ADL pass: the replayed states streamed through every ADL action, each action's pool computed in
compiled code from the state just before it and handed to the audit kernel, never held as a table.

The set-wise replay (:func:`forensics.reconstruct.replay.build_state`) gives the state of every (account,
coin) after each of its events and every account's wallet after each of its cash events. This pass walks
those events in replay order once, keeping the current state of every pair, each coin-side's open positions
(a dense member list per (coin, side) with swap-removal) and every account's wallet; at each action it reads
the pool off the coin-side's members: for each candidate, the account value from its holdings at the action's
marks (with its interval from the other coins' mark uncertainty), the features every rule reads, the outcome
(closed size, fill order) and the legitimate reasons not to count a pass-over (skip reasons, integrity
notes). Memory grows with positions and accounts, not with actions x positions; the work is one pass over the
events plus, per action, the pool times the candidates' holdings.

The rows are handed to :class:`forensics.audit.evidence.Collector` (every rule's evidence on the action) and,
on request, kept as ``adl_pools`` rows: for all actions (:func:`build_steps_and_pools`, the table SQL users
read) or for a sample (the diagnostics).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from forensics.audit import kernel as K
from forensics.audit.evidence import (
    REASONS,
    WINDOW_ACTIONS,
    Collector,
    Evidence,
    assign_windows,
    evidence_rows,
    single_episodes,
)
from forensics.audit.rules import RULES, Rule
from forensics.audit.table import PUBLISHED_MARK_SOURCES, mark_tolerance
from forensics.compiled import njit
from forensics.tables import ADL_POOLS, ADL_STEPS

from . import integrity
from .actions import coin_meta, liquidator_vaults, segment_steps
from .arrays import distinct_names, index_in
from .marks import SOURCES, MarkBook, mark_intervals, mark_observations
from .replay import build_state, order_fills, perp_fills

_REASON = {name: i for i, name in enumerate(REASONS)}
# a worker for polars work that overlaps the replay on the machine's second core (the integrity notes); no
# compiled (numba) code runs on it
_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqf-audit")

# per-row integer outputs of the pool kernel
O_PAIR, O_USER, O_ISOLATED, O_SELECTED, O_FILL_ORDER, O_REASON, O_GAP, O_NULLS = range(8)
N_OUT_INTS = 8
# per-row float outputs besides the feature rows
X_CLOSED, X_LOT, X_PNL_PRICE, X_AGE = range(4)
N_OUT_FLOATS = 4
# null bits (polars NULL, as opposed to NaN, in the adl_pools table)
NULL_ENTRY, NULL_MARK, NULL_AV, NULL_WALLET, NULL_LEV, NULL_MAXLEV, NULL_SEG, NULL_LOT = (1 << k for k in range(8))


@dataclass
class PassResult:
    """What the pass found: the actions (``adl_steps`` rows), the evidence of every rule, the pools of the
    sampled actions (or of all, on request) and what the integrity check left out."""

    steps: pl.DataFrame
    evidence: Evidence | None
    pools: pl.DataFrame | None
    incomplete_steps: list[int]
    integrity: dict
    mark_sources: dict[str, int]
    pool_rows: int
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


# packed state (one cache line per pair, two per account: the pass reads them at random)
# per pair, floats: position size, entry, isolated margin, configured leverage
PF_SIZE, PF_ENTRY, PF_ISO, PF_LEV = range(4)
# per pair, ints: segment start (ms, block), flags, account, coin, integrity notes (contradiction intervals
# [start, end) in the interval arrays, the earliest lost leg's ord)
PI_SEG_MS, PI_SEG_BLK, PI_FLAGS, PI_USER, PI_COIN, PI_CONTRA, PI_CONTRA_END, PI_LOST = range(8)
FLAG_ENTRY_NULL, FLAG_ISOLATED, FLAG_SEEN = 1, 2, 4
# per account, floats: wallet, cached holdings (cross uPnL, unknown, isolated margins, maintenance margin,
# uPnL interval, maintenance margin interval), closed size in the current action (NaN: not selected)
UF_WALLET, UF_CROSS, UF_UNKNOWN, UF_ISO, UF_MM, UF_AV_LO, UF_AV_HI, UF_AMM_LO, UF_AMM_HI, UF_CLOSED = range(10)
# per account, ints: version (moves with each of its events), cache key (mark set, version), fill order in
# the current action, first contradiction (ord), vault
UI_VERSION, UI_KEY_MARKS, UI_KEY_VERSION, UI_FILL_ORDER, UI_FIRST_GAP, UI_VAULT, UI_ISO_UNKNOWN = range(7)
# events in replay order: floats (size, entry, isolated margin, leverage), ints (pair, seg ms, seg block, flags)
EV_PAIR, EV_SEG_MS, EV_SEG_BLK, EV_FLAGS = range(4)


@njit(cache=True)
def _advance(
    to_ord: int,
    cursors: np.ndarray,
    ev_ord: np.ndarray,
    evf: np.ndarray,
    evi: np.ndarray,
    w_ord: np.ndarray,
    w_user: np.ndarray,
    w_wallet: np.ndarray,
    PF: np.ndarray,
    PI: np.ndarray,
    UF: np.ndarray,
    UI: np.ndarray,
    members: np.ndarray,
    group_start: np.ndarray,
    group_len: np.ndarray,
    group_of: np.ndarray,
    slot: np.ndarray,
) -> None:
    """Apply every event with ord < ``to_ord``: each pair's state, each coin-side's open positions (a member
    list per (coin, side), swap-removal) and each account's wallet; an account's version moves with each of its
    events (its cached holdings are then stale)."""
    e = cursors[0]
    while e < len(ev_ord) and ev_ord[e] < to_ord:
        p = evi[e, EV_PAIR]
        s = evf[e, PF_SIZE]
        PF[p, PF_SIZE] = s
        PF[p, PF_ENTRY] = evf[e, PF_ENTRY]
        PF[p, PF_ISO] = evf[e, PF_ISO]
        PF[p, PF_LEV] = evf[e, PF_LEV]
        PI[p, PI_SEG_MS] = evi[e, EV_SEG_MS]
        PI[p, PI_SEG_BLK] = evi[e, EV_SEG_BLK]
        PI[p, PI_FLAGS] = evi[e, EV_FLAGS] | FLAG_SEEN
        UI[PI[p, PI_USER], UI_VERSION] += 1
        g = -1 if s == 0 else PI[p, PI_COIN] * 2 + (1 if s > 0 else 0)
        old = group_of[p]
        if g != old:
            if old >= 0:  # swap-remove
                k = slot[p]
                last = members[group_start[old] + group_len[old] - 1]
                members[group_start[old] + k] = last
                slot[last] = k
                group_len[old] -= 1
            if g >= 0:
                k = group_len[g]
                members[group_start[g] + k] = p
                slot[p] = k
                group_len[g] += 1
            group_of[p] = g
        e += 1
    cursors[0] = e
    w = cursors[1]
    while w < len(w_ord) and w_ord[w] < to_ord:
        u = w_user[w]
        UF[u, UF_WALLET] = w_wallet[w]
        UI[u, UI_VERSION] += 1
        w += 1
    cursors[1] = w


@njit(cache=True)
def _holdings(
    u: int,
    mark_set: int,
    m: np.ndarray,
    m_lo: np.ndarray,
    m_hi: np.ndarray,
    user_pairs_start: np.ndarray,
    PF: np.ndarray,
    PI: np.ndarray,
    UF: np.ndarray,
    UI: np.ndarray,
    max_lev: np.ndarray,
) -> None:
    """The account's holdings at the action's marks, cached until its next event or the next change of marks:
    cross uPnL, whether a cross term is unknown (NaN), isolated margins, maintenance margin, and the intervals
    of uPnL and maintenance margin from the marks' uncertainty (each coin's term at both ends). A user's pairs
    are consecutive pair ids."""
    if UI[u, UI_KEY_MARKS] == mark_set and UI[u, UI_KEY_VERSION] == UI[u, UI_VERSION]:
        return
    cross_upnl = iso_sum = acct_mm = av_lo = av_hi = amm_lo = amm_hi = 0.0
    unknown = 0.0
    for hp in range(user_pairs_start[u], user_pairs_start[u + 1]):
        fl = PI[hp, PI_FLAGS]
        if not fl & FLAG_SEEN:
            continue  # no event before the action: not held
        hs = PF[hp, PF_SIZE]
        isolated = fl & FLAG_ISOLATED
        if isolated:
            iso_sum += PF[hp, PF_ISO]
        if hs == 0:
            continue
        c = PI[hp, PI_COIN]
        mk = m[c]
        if np.isnan(mk):
            continue  # no mark for the coin: its terms are unknown, not counted (as a NULL sum term)
        if not isolated and not fl & FLAG_ENTRY_NULL:
            t = hs * (mk - PF[hp, PF_ENTRY])
            if np.isnan(t):
                unknown = 1.0
            else:
                cross_upnl += t
                lo_t, hi_t = hs * (m_lo[c] - mk), hs * (m_hi[c] - mk)
                av_lo += min(lo_t, hi_t)
                av_hi += max(lo_t, hi_t)
        ml = max_lev[c]
        if not np.isnan(ml):
            acct_mm += abs(hs) * mk / (2.0 * ml)
            amm_lo += abs(hs) * (m_lo[c] - mk) / (2.0 * ml)
            amm_hi += abs(hs) * (m_hi[c] - mk) / (2.0 * ml)
    UF[u, UF_CROSS], UF[u, UF_UNKNOWN], UF[u, UF_ISO], UF[u, UF_MM] = cross_upnl, unknown, iso_sum, acct_mm
    UF[u, UF_AV_LO], UF[u, UF_AV_HI], UF[u, UF_AMM_LO], UF[u, UF_AMM_HI] = av_lo, av_hi, amm_lo, amm_hi
    UI[u, UI_KEY_MARKS] = mark_set
    UI[u, UI_KEY_VERSION] = UI[u, UI_VERSION]


@njit(cache=True)
def _pool(
    i: int,
    acts: tuple,
    marks: tuple,
    user_pairs_start: np.ndarray,
    max_lev: np.ndarray,
    sz_dec: np.ndarray,
    PF: np.ndarray,
    PI: np.ndarray,
    UF: np.ndarray,
    UI: np.ndarray,
    members: np.ndarray,
    group_start: np.ndarray,
    group_len: np.ndarray,
    contra_lo: np.ndarray,
    contra_hi: np.ndarray,
    flags: tuple,
    F: np.ndarray,
    oi: np.ndarray,
    of: np.ndarray,
) -> int:
    """The pool of action ``i`` just before its first leg, written to ``F`` (features), ``oi`` and ``of``
    (per-row outputs); returns the number of rows."""
    a_K, a_coin, a_side, a_liq, a_t, a_blk, a_px = acts[0], acts[1], acts[2], acts[3], acts[4], acts[5], acts[6]
    mark_all, lo_all, hi_all = marks
    same_block_reason, has_min_av, min_av, other_coins = flags
    own = a_coin[i]
    g = own * 2 + a_side[i]
    K_ord, t_ms, step_blk, adl_px, liq_user, mset = a_K[i], a_t[i], a_blk[i], a_px[i], a_liq[i], acts[7][i]
    m, m_lo, m_hi = mark_all[i], lo_all[i], hi_all[i]
    mark_own = m[own]
    own_null = np.isnan(mark_own)
    ml = max_lev[own]
    sd = sz_dec[own]
    lot = 10.0 ** (-float(sd)) if sd >= 0 else np.nan
    nat = np.iinfo(np.int64).min
    n = 0
    for q in range(group_len[g]):
        p = members[group_start[g] + q]
        u = PI[p, PI_USER]
        if u == liq_user or UI[u, UI_VAULT]:
            continue
        _holdings(u, mset, m, m_lo, m_hi, user_pairs_start, PF, PI, UF, UI, max_lev)
        size = PF[p, PF_SIZE]
        sgn = 1.0 if size > 0 else -1.0
        asize = abs(size)
        entry = PF[p, PF_ENTRY]
        pfl = PI[p, PI_FLAGS]
        entry_null = (pfl & FLAG_ENTRY_NULL) != 0
        isolated = (pfl & FLAG_ISOLATED) != 0
        nulls = 0
        if entry_null:
            nulls |= NULL_ENTRY
        if own_null:
            nulls |= NULL_MARK
        notional = asize * mark_own
        upnl = sgn * asize * (mark_own - entry) if not entry_null else np.nan
        wallet = UF[u, UF_WALLET]
        if np.isnan(wallet):
            nulls |= NULL_WALLET
        av_lo = av_hi = 0.0
        if isolated:
            av = PF[p, PF_ISO] + upnl
            if entry_null or own_null:
                nulls |= NULL_AV
        elif UF[u, UF_UNKNOWN] > 0 or np.isnan(wallet):
            av = np.nan
            nulls |= NULL_AV
        else:
            av = wallet - UF[u, UF_ISO] + UF[u, UF_CROSS]
            # the other coins' interval: the account's minus the candidate's own term
            av_lo, av_hi = UF[u, UF_AV_LO], UF[u, UF_AV_HI]
            if not (entry_null or own_null or np.isnan(entry)):
                lo_t, hi_t = size * (m_lo[own] - mark_own), size * (m_hi[own] - mark_own)
                av_lo -= min(lo_t, hi_t)
                av_hi -= max(lo_t, hi_t)
        if has_min_av and not (nulls & NULL_AV) and av <= min_av:
            continue
        lev = PF[p, PF_LEV]
        if np.isnan(lev):
            nulls |= NULL_LEV
        if np.isnan(ml):
            nulls |= NULL_MAXLEV
        amm_lo, amm_hi = UF[u, UF_AMM_LO], UF[u, UF_AMM_HI]
        if not (own_null or np.isnan(ml)):
            amm_lo -= asize * (m_lo[own] - mark_own) / (2.0 * ml)
            amm_hi -= asize * (m_hi[own] - mark_own) / (2.0 * ml)
        seg = PI[p, PI_SEG_MS]
        if seg == nat:
            nulls |= NULL_SEG
        if sd < 0:
            nulls |= NULL_LOT
        closed = UF[u, UF_CLOSED]
        selected = not np.isnan(closed)
        # legitimate reasons (a state the data contradict or cannot confirm wins over a skip reason)
        reason = 0
        for k in range(PI[p, PI_CONTRA], PI[p, PI_CONTRA_END]):
            if contra_lo[k] < K_ord <= contra_hi[k]:
                reason = 4
                break
        if reason == 0 and PI[p, PI_LOST] < K_ord:
            reason = 5
        if reason == 0 and K_ord <= UI[u, UI_ISO_UNKNOWN]:
            reason = 6
        if reason == 0 and not selected:
            if sd >= 0 and asize < lot * (1 - 1e-9):
                reason = 1
            elif isolated and not entry_null and PF[p, PF_ISO] + sgn * asize * (adl_px - entry) <= 0:
                reason = 2
            elif same_block_reason and PI[p, PI_SEG_BLK] == step_blk:
                reason = 3
        lv = notional / av
        F[K.SIZE, n] = asize
        F[K.ENTRY, n] = entry
        F[K.MARK, n] = mark_own
        F[K.SIGN, n] = sgn
        F[K.NOTIONAL, n] = notional
        F[K.UPNL, n] = upnl
        F[K.AV, n] = av
        F[K.WALLET, n] = wallet
        F[K.LEV, n] = lv
        F[K.EFF_LEV, n] = lv
        F[K.MM, n] = notional / (2.0 * ml)
        F[K.ACCT_MM, n] = UF[u, UF_MM]
        F[K.PNL_MARGIN, n] = upnl / (asize * entry / lev)
        F[K.MARGIN_LEV, n] = lev
        if not other_coins:  # the own coin's mark interval only (tests compare with pools held as a table)
            av_lo = av_hi = amm_lo = amm_hi = 0.0
        F[K.AV_LO, n] = av_lo
        F[K.AV_HI, n] = av_hi
        F[K.AMM_LO, n] = amm_lo
        F[K.AMM_HI, n] = amm_hi
        F[K.F_LO, n] = 1.0 if own_null else m_lo[own] / mark_own
        F[K.F_HI, n] = 1.0 if own_null else m_hi[own] / mark_own
        oi[O_PAIR, n] = p
        oi[O_USER, n] = u
        oi[O_ISOLATED, n] = 1 if isolated else 0
        oi[O_SELECTED, n] = 1 if selected else 0
        oi[O_FILL_ORDER, n] = UI[u, UI_FILL_ORDER] if selected else 0
        oi[O_REASON, n] = reason
        oi[O_GAP, n] = 1 if UI[u, UI_FIRST_GAP] < K_ord else 0
        oi[O_NULLS, n] = nulls
        of[X_CLOSED, n] = closed if selected else 0.0
        of[X_LOT, n] = lot
        of[X_PNL_PRICE, n] = (mark_own / entry - 1.0) if sgn > 0 else (1.0 - mark_own / entry)
        of[X_AGE, n] = float(t_ms - seg) if seg != nat else np.nan
        n += 1
    return n


@njit(cache=True)
def _run(
    i0: int,
    acts: tuple,
    legs: tuple,
    marks: tuple,
    static: tuple,
    evs: tuple,
    cursors: np.ndarray,
    PF: np.ndarray,
    PI: np.ndarray,
    UF: np.ndarray,
    UI: np.ndarray,
    groups: tuple,
    contra: tuple,
    flags: tuple,
    F: np.ndarray,
    oi: np.ndarray,
    of: np.ndarray,
    out: tuple,
    coll: tuple,
    audit: bool,
) -> int:
    """Actions from ``i0`` on: replay to each, compute its pool, feed the audit kernel. Stops after an action
    whose pool is to be kept (the caller copies it out of ``F``/``oi``/``of``) or at the end of a window (the
    caller folds the window's counts). Returns the next action."""
    a_K, a_coin, a_window, a_episode, a_keep, a_complete = acts[0], acts[1], acts[8], acts[9], acts[10], acts[11]
    leg_start, leg_user, leg_closed, leg_order, lot_stand_in = legs
    user_pairs_start, max_lev, sz_dec, pair_user = static
    ev_ord, evf, evi, w_ord, w_user, w_wallet = evs
    members, group_start, group_len, group_of, slot = groups
    contra_lo, contra_hi = contra
    pool_size, src_rows, a_src, audited, n_audited, reason_rows = out
    state, batch, presence = coll
    n_act = len(a_K)
    i = i0
    while i < n_act:
        _advance(
            a_K[i],
            cursors,
            ev_ord,
            evf,
            evi,
            w_ord,
            w_user,
            w_wallet,
            PF,
            PI,
            UF,
            UI,
            members,
            group_start,
            group_len,
            group_of,
            slot,
        )
        for k in range(leg_start[i], leg_start[i + 1]):
            UF[leg_user[k], UF_CLOSED] = leg_closed[k]
            UI[leg_user[k], UI_FILL_ORDER] = leg_order[k]
        n = _pool(
            i,
            acts,
            marks,
            user_pairs_start,
            max_lev,
            sz_dec,
            PF,
            PI,
            UF,
            UI,
            members,
            group_start,
            group_len,
            contra_lo,
            contra_hi,
            flags,
            F,
            oi,
            of,
        )
        for k in range(leg_start[i], leg_start[i + 1]):
            UF[leg_user[k], UF_CLOSED] = np.nan
            UI[leg_user[k], UI_FILL_ORDER] = 0
        pool_size[i] = n
        src_rows[a_src[i]] += n
        any_sel = False
        for q in range(n):
            if oi[O_SELECTED, q]:
                any_sel = True
                break
        if a_complete[i] and any_sel:
            for q in range(n):
                reason_rows[oi[O_REASON, q]] += 1
                reason_rows[len(reason_rows) - 1] += oi[O_GAP, q]
        if audit and a_complete[i] and any_sel:
            users = oi[O_USER, :n]
            selected = oi[O_SELECTED, :n] > 0
            size = F[K.SIZE, :n]
            closed = of[X_CLOSED, :n]
            partial = selected & (closed < size * (1 - 1e-12))
            reason = oi[O_REASON, :n]
            lot = of[X_LOT, :n].copy()
            for q in range(n):
                if np.isnan(lot[q]):
                    lot[q] = lot_stand_in[a_coin[i]]
                presence[users[q], 0] += 1
                if selected[q]:
                    presence[users[q], 1] += 1
            K.add_to_batch(
                batch,
                state,
                n_audited[0],
                a_episode[i],
                F[:, :n],
                users,
                oi[O_PAIR, :n],
                selected,
                oi[O_FILL_ORDER, :n],
                closed,
                partial,
                reason > 0,
                oi[O_GAP, :n] > 0,
                lot,
                reason,
            )
            audited[i] = True
            n_audited[0] += 1
        i += 1
        if a_keep[i - 1] or (i < n_act and a_window[i] != a_window[i - 1]):
            break
    return i


def audit_pass(
    fills: pl.DataFrame | pl.LazyFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    asset_ctxs: pl.DataFrame | None,
    *,
    cash: pl.DataFrame | None = None,
    vault: str | None = None,
    gap_seconds: float = 5.0,
    venue: str = "hyperliquid",
    min_account_value: float | None = 0.0,
    max_mark_age_ms: int | None = None,
    misc_before_fills: bool = True,
    rules: list[Rule] | None = None,
    audit: bool = True,
    window: tuple[int | None, int | None] = (None, None),
    keep_pools: str | np.ndarray | None = None,
    sample_actions: int = 0,
    seed: int = 0,
    check_integrity: bool = True,
    mark_movement: bool = True,
    account_intervals: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> PassResult:
    """Replay the fills from the snapshot through the last ADL action and audit every action on the way.

    ``window``: (from, to) epoch ms of the actions audited and reported (the replay always starts at the
    snapshot). ``keep_pools``: ``"all"`` keeps every pool row (the ``adl_pools`` table), ``"first_per_wave"``
    each position's row in the first action of each wave that it is a candidate of (the pre-wave state),
    an array of step ids those actions' pools, None none; ``sample_actions`` more actions chosen at random
    (``seed``) among the audited ones, kept whole for the diagnostics. ``audit``: feed the audit kernel
    (False: pools only).
    ``check_integrity``: rows whose state the data contradict or cannot confirm are excused (see
    :mod:`forensics.reconstruct.integrity`). ``mark_movement``: widen each mark's interval by the observed
    movement within its publication interval (else the published precision only). ``account_intervals``: each
    account value's interval from its other coins' marks (off: the own coin's mark interval alone, as pools
    held as a table carry it). ``progress(done,
    total)`` is called as the pass goes."""
    clock = _Clock()
    rules = rules or list(RULES.values())
    collect = lambda x: x.collect() if isinstance(x, pl.LazyFrame) else x  # noqa: E731
    asset_ctxs, positions, accounts = collect(asset_ctxs), collect(positions), collect(accounts)
    if asset_ctxs is not None:
        asset_ctxs = asset_ctxs.with_columns(pl.col("coin").cast(pl.Categorical))
    ordered = order_fills(perp_fills(fills))
    # the integrity notes read only the ordered fills and the snapshots: computed on the second core while
    # the replay builds its state (polars releases the GIL)
    notes_job = (
        _BACKGROUND.submit(integrity.pair_notes, fills, positions, accounts, ordered=ordered)
        if check_integrity
        else None
    )
    adl_blk = ordered.filter(pl.col("is_adl"))["blk"].max()
    # fills after the last ADL action's block change no pool: the replay stops there (the integrity check
    # reads on: a later fill can contradict an earlier state)
    state = build_state(
        ordered if adl_blk is None else ordered.filter(pl.col("blk") <= adl_blk),
        positions,
        accounts,
        cash,
        misc_before_fills=misc_before_fills,
        ordered=True,
    )
    f, ev, wallets = state["fills"], state["events"], state["wallets"]
    clock.lap("replay")
    steps, legs = segment_steps(f, gap_seconds)
    if steps.height == 0:
        if notes_job is not None:
            notes_job.cancel()
        empty_steps = pl.DataFrame(schema={c.name: _PL_TYPES[c.type] for c in ADL_STEPS.columns})
        return PassResult(empty_steps, None, None, [], {}, {}, 0, clock.laps, clock.cpu)
    steps = steps.sort("K")

    # --- codes: accounts in address order, coins dense, pairs numbered by (account, coin) -----------------
    users = distinct_names(ev["user"], wallets["user"], legs["user"], steps["liquidated_user"])
    coins = distinct_names(ev["coin"])
    user_of = lambda x: index_in(x, users)  # noqa: E731
    coin_of = lambda x: index_in(x, coins)  # noqa: E731
    n_users, n_coins = len(users), len(coins)
    # an account's pairs are consecutive ids, accounts in address order
    pair_keys, pair_id = np.unique(user_of(ev["user"]) * n_coins + coin_of(ev["coin"]), return_inverse=True)
    pair_id = pair_id.astype(np.int64)
    n_pairs = len(pair_keys)
    pair_user, pair_coin = (pair_keys // n_coins).astype(np.int64), (pair_keys % n_coins).astype(np.int64)
    user_pairs_start = _offsets(pair_user, n_users)
    # coin-side groups: room for every pair of the coin on either side
    cap = np.repeat(np.bincount(pair_coin, minlength=n_coins), 2)
    groups = (
        np.zeros(int(cap.sum()), dtype=np.int64),
        np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64),
        np.zeros(len(cap), dtype=np.int64),
        np.full(n_pairs, -1, dtype=np.int64),
        np.zeros(n_pairs, dtype=np.int64),
    )
    vaults = liquidator_vaults(f)
    if vault:
        vaults = vaults.extend(pl.Series([vault.lower()]).cast(vaults.dtype))
    is_vault = np.isin(users, vaults.cast(pl.Utf8).to_numpy().astype(str)).astype(np.int64)
    meta = coin_meta(asset_ctxs, state["snapshot_positions"]).with_columns(pl.col("coin").cast(pl.Utf8))
    meta = pl.DataFrame({"coin": coins}).join(meta, on="coin", how="left", maintain_order="left")
    sz_dec = meta["sz_decimals"].fill_null(-1).to_numpy().astype(np.int64)
    static = (user_pairs_start, meta["max_lev"].fill_null(np.nan).to_numpy().astype(np.float64), sz_dec, pair_user)

    def action_marks() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every coin's mark at every action, its source and its interval (n_act x n_coins each)."""
        st_t, st_K, n_act = steps["time_ms"].to_numpy().astype(np.int64), steps["K"].to_numpy(), steps.height
        q_coin = np.tile(np.arange(n_coins, dtype=np.int64), n_act)
        q_t = np.repeat(st_t, n_coins)
        book = MarkBook.build(mark_observations(f, asset_ctxs), f, coins)
        mark, src, used = book.at(q_coin, q_t, np.repeat(st_K.astype(np.int64), n_coins), max_mark_age_ms)
        published = np.isin(src, [SOURCES.index(x) for x in PUBLISHED_MARK_SOURCES]) & ~np.isnan(mark)
        tol = mark_tolerance(mark, published, np.tile(np.where(sz_dec >= 0, sz_dec, np.nan), n_act))
        m_lo, m_hi = mark * (1 - tol), mark * (1 + tol)
        if mark_movement:
            lo_mv, hi_mv = mark_intervals(q_coin, q_t, used, mark, f, asset_ctxs, coins)
            m_lo = np.fmin(m_lo, lo_mv * (1 - tol))
            m_hi = np.fmax(m_hi, hi_mv * (1 + tol))
        return tuple(x.reshape(n_act, n_coins) for x in (mark, src, m_lo, m_hi))  # type: ignore[return-value]

    evs = _pack_events(ev, pair_id, wallets, user_of(wallets["user"]))
    del ev
    state["events"] = None  # the pass reads the packed copy

    # --- actions in replay order, their legs, marks, episodes and windows --------------------------------
    n_act = steps.height
    st_id = steps["step_id"].to_numpy().astype(np.int64)
    st_coin = coin_of(steps["coin"])
    st_t = steps["time_ms"].to_numpy().astype(np.int64)
    st_K = steps["K"].to_numpy().astype(np.int64)
    st_blk = steps["blk"].to_numpy().astype(np.int64)
    complete = (steps["unmatched_counter_legs"] == 0).to_numpy()
    in_window = np.ones(n_act, dtype=bool)
    if window[0] is not None:
        in_window &= st_t >= window[0]
    if window[1] is not None:
        in_window &= st_t <= window[1]
    complete &= in_window
    window = assign_windows(st_blk, steps["wave_id"].to_numpy(), WINDOW_ACTIONS)
    episode = steps.select(pl.struct("blk", "coin").rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    ep_code = single_episodes(episode)
    out = legs.group_by("step_id", "user", maintain_order=True).agg(
        pl.col("sz").sum().alias("closed_size"), pl.col("ord").min().alias("_ford")
    )
    out = out.with_columns(pl.col("_ford").rank("ordinal").over("step_id").cast(pl.Int64).alias("fill_order"))
    leg_action = np.searchsorted(st_id, out["step_id"].to_numpy())  # step ids ascend with K
    by_action = np.argsort(leg_action, kind="stable")
    leg_closed = out["closed_size"].to_numpy().astype(np.float64)[by_action]
    # without szDecimals, the smallest ADL cut seen in the coin: at least one lot, so a conservative stand-in
    lot_stand_in = np.zeros(n_coins)
    cut = pl.DataFrame({"c": st_coin[leg_action[by_action]], "v": leg_closed}).filter(pl.col("v") > 0)
    for c, v in cut.group_by("c").agg(pl.col("v").min()).iter_rows():
        lot_stand_in[c] = v
    legs_t = (
        _offsets(leg_action, n_act),
        user_of(out["user"])[by_action],
        leg_closed,
        out["fill_order"].to_numpy().astype(np.int64)[by_action],
        lot_stand_in,
    )
    # in this thread: the marks' compiled kernels stay off the worker (numba's threading layer is not thread-safe)
    mark, src, m_lo, m_hi = action_marks()
    # actions that see the same marks share cached holdings
    same = np.zeros(n_act, dtype=bool)
    if n_act > 1:
        same[1:] = (
            _rows_equal(mark[1:], mark[:-1]) & _rows_equal(m_lo[1:], m_lo[:-1]) & _rows_equal(m_hi[1:], m_hi[:-1])
        )
    mark_set = np.cumsum(~same).astype(np.int64)
    mode = keep_pools if isinstance(keep_pools, str) else None
    if mode not in (None, "all", "first_per_wave"):
        raise ValueError(f"keep_pools must be 'all', 'first_per_wave', step ids or None, not {keep_pools!r}")
    keep = np.full(n_act, mode is not None)
    if keep_pools is not None and mode is None:
        keep = np.isin(st_id, np.asarray(keep_pools))
    if sample_actions:
        pick = np.flatnonzero(complete)
        rng = np.random.default_rng(seed)
        keep[rng.choice(pick, size=min(sample_actions, len(pick)), replace=False)] = True
    keep &= in_window
    acts = (
        st_K,
        st_coin,
        (steps["adl_side"] == "long").to_numpy().astype(np.int64),
        user_of(steps["liquidated_user"]),
        st_t,
        st_blk,
        steps["adl_px"].to_numpy().astype(np.float64),
        mark_set,
        window,
        ep_code,
        keep,
        complete,
    )
    clock.lap("marks")

    # --- integrity: states the data contradict or cannot confirm ------------------------------------------
    nat = np.iinfo(np.int64).min
    never = np.iinfo(np.int64).max
    PI = np.zeros((n_pairs, 8), dtype=np.int64)
    PI[:, PI_SEG_MS] = PI[:, PI_SEG_BLK] = nat
    PI[:, PI_USER], PI[:, PI_COIN], PI[:, PI_LOST] = pair_user, pair_coin, never
    UI = np.zeros((n_users, 7), dtype=np.int64)
    UI[:, UI_ISO_UNKNOWN] = -1
    UI[:, UI_KEY_MARKS] = -1
    UI[:, UI_FIRST_GAP] = never
    UI[:, UI_VAULT] = is_vault
    contra_lo = contra_hi = np.zeros(0, dtype=np.int64)
    integrity_summary: dict = {"lost_legs": 0, "two_sided": False}
    notes = None
    if check_integrity:
        assert notes_job is not None
        notes = notes_job.result()
        integrity_summary = dict(notes.summary)
        pair_of = pl.DataFrame({"user": pair_user, "coin": pair_coin, "pair": np.arange(n_pairs)})
        if notes.contradicted.height:
            c = (
                notes.contradicted.with_columns(
                    user=user_of(notes.contradicted["user"]), coin=coin_of(notes.contradicted["coin"])
                )
                .join(pair_of, on=["user", "coin"], how="inner")
                .sort("pair", "lo")
            )
            start = _offsets(c["pair"].to_numpy(), n_pairs)
            PI[:, PI_CONTRA], PI[:, PI_CONTRA_END] = start[:-1], start[1:]
            contra_lo, contra_hi = c["lo"].to_numpy().astype(np.int64), c["hi"].to_numpy().astype(np.int64)
            g = c.group_by("user").agg(pl.col("lo").min())
            UI[g["user"].to_numpy(), UI_FIRST_GAP] = g["lo"].to_numpy()
        if notes.lost.height:
            lost = notes.lost.with_columns(user=user_of(notes.lost["user"]), coin=coin_of(notes.lost["coin"])).join(
                pair_of, on=["user", "coin"], how="inner"
            )
            PI[lost["pair"].to_numpy(), PI_LOST] = lost["lost_ord"].to_numpy()
        iso = integrity.isolated_margin_unknown(positions, ordered)
        if iso.height:
            at = user_of(iso["user"])
            UI[at[at >= 0], UI_ISO_UNKNOWN] = iso["until_ord"].to_numpy()[at >= 0]
    clock.lap("integrity")

    # --- the pass -----------------------------------------------------------------------------------------
    width = max(int(cap.max(initial=0)), 1)
    collector = (
        Collector(rules, users, pair_user, n_act, max_pool=width) if audit else Collector([], users, pair_user[:0], 0)
    )
    F = np.zeros((K.N_FEATURES, width))
    oi = np.zeros((N_OUT_INTS, width), dtype=np.int64)
    of = np.zeros((N_OUT_FLOATS, width))
    PF = np.zeros((n_pairs, 4))
    PF[:, PF_ENTRY] = PF[:, PF_ISO] = PF[:, PF_LEV] = np.nan
    UF = np.zeros((n_users, 10))
    UF[:, UF_WALLET] = UF[:, UF_CLOSED] = np.nan
    cursors = np.zeros(2, dtype=np.int64)
    has_min = min_account_value is not None
    flags = (
        f.height > 0 and f["block_number"].null_count() > 0,
        has_min,
        float(min_account_value) if has_min else 0.0,
        account_intervals,
    )
    pool_size = np.zeros(n_act, dtype=np.int64)
    src_rows = np.zeros(len(SOURCES), dtype=np.int64)
    a_src = src[np.arange(n_act), st_coin]
    audited = np.zeros(n_act, dtype=np.bool_)
    n_audited = np.zeros(1, dtype=np.int64)
    # audited rows per reason code, and (last) rows whose account value is uncertain (a lost fill before)
    reason_rows = np.zeros(len(REASONS) + 1, dtype=np.int64)
    outs = (pool_size, src_rows, a_src, audited, n_audited, reason_rows)
    coll = (collector.state, collector.batch, collector.presence)
    kept: list[dict[str, np.ndarray]] = []
    seen_wave = np.full(n_pairs, -1, dtype=np.int64)
    i = 0
    while i < n_act:
        nxt = _run(
            i,
            acts,
            legs_t,
            (mark, m_lo, m_hi),
            static,
            evs,
            cursors,
            PF,
            PI,
            UF,
            UI,
            groups,
            (contra_lo, contra_hi),
            flags,
            F,
            oi,
            of,
            outs,
            coll,
            audit,
        )
        last = nxt - 1
        if keep[last]:
            rows = _rows(last, int(pool_size[last]), F, oi, of, int(a_src[last]))
            if mode == "first_per_wave":  # a position's first row of the wave: the state before the wave
                wave = int(steps["wave_id"][last])
                first = seen_wave[rows["oi"][O_PAIR]] != wave
                seen_wave[rows["oi"][O_PAIR][first]] = wave
                rows = {k: (v[:, first] if v.ndim == 2 else v[first]) for k, v in rows.items()}
            kept.append(rows)
        if audit and (nxt == n_act or window[nxt] != window[last]):
            collector.end_window(int(window[last]))
        if progress is not None:
            progress(nxt, n_act)
        i = nxt
    clock.lap("pass")

    steps = steps.with_columns(pl.Series("pool_size", pool_size))
    evidence = None
    if audit:
        acts_frame = pl.DataFrame(
            {
                "step_id": st_id[audited],
                "episode": episode[audited],
                "window": window[audited],
                "time_ms": st_t[audited],
                "wave": steps["wave_id"].to_numpy()[audited],
            }
        )
        step_coin = coins[st_coin[audited]]

        def row_frame(rule: Rule, ints: np.ndarray, floats: np.ndarray, feat: np.ndarray) -> pl.DataFrame:
            r = rules.index(rule)
            cu = collector.per_action[r, :, K.A_CUT_USER][: len(acts_frame)]
            acts_r = acts_frame.with_columns(pl.Series("cut_user", np.where(cu >= 0, users[np.maximum(cu, 0)], None)))
            rows = evidence_rows(rule, ints, floats, users, acts_r)
            a = ints[:, 0]
            extra = {name: feat[:, j] for j, name in enumerate(K.FEATURES[: feat.shape[1]])}
            return rows.with_columns(
                pl.Series("coin", step_coin[a]),
                pl.Series("pool_size", collector.per_action[r, a, K.A_POOL]),
                pl.Series("selected_count", collector.per_action[r, a, K.A_SELECTED]),
                *[pl.Series(k, v).fill_nan(None) for k, v in extra.items() if k != "sign"],
                pl.Series("side", np.where(extra["sign"] > 0, "long", "short")),
            ).with_columns(
                pl.col("skip_reason").replace({REASONS[4]: None, REASONS[5]: None, REASONS[6]: None}),
                pl.when(pl.col("skip_reason").is_in([REASONS[4], REASONS[5], REASONS[6]]))
                .then(pl.col("skip_reason"))
                .alias("state_note"),
            )

        collector.per_action = collector.per_action[:, : int(n_audited[0])]
        evidence = collector.finish(acts_frame, row_frame)
        if notes is not None:  # the evidence behind each integrity note, for the rows kept
            k_of = steps.select("step_id", "K")
            for name, rows in evidence.rows.items():
                if rows is not None and rows.height:
                    evidence.rows[name] = integrity.row_details(
                        rows.join(k_of, on="step_id", how="left", maintain_order="left"), notes
                    ).drop("K")
    pools = _pools_table(kept, st_id, coins[st_coin], users, venue) if kept else None
    clock.lap("evidence")
    integrity_summary.update(
        contradicted_rows=int(reason_rows[REASONS.index(integrity.CONTRADICTED)]),
        lost_leg_rows=int(reason_rows[REASONS.index(integrity.LOST_LEG)]),
        isolated_margin_rows=int(reason_rows[REASONS.index(integrity.ISOLATED_MARGIN)]),
        account_gap_rows=int(reason_rows[-1]),
    )
    incomplete = steps.filter(pl.Series(in_window) & (pl.col("unmatched_counter_legs") > 0))["step_id"].to_list()
    return PassResult(
        _steps_table(steps.filter(pl.Series(in_window)), venue),
        evidence,
        pools,
        incomplete,
        integrity_summary,
        {SOURCES[k]: int(v) for k, v in enumerate(src_rows) if v},
        int(pool_size[in_window].sum()),
        clock.laps,
        clock.cpu,
    )


def _pack_events(ev: pl.DataFrame, pair_id: np.ndarray, wallets: pl.DataFrame, wallet_user: np.ndarray) -> tuple:
    """The replay's events and wallet changes in replay order (stable: a pair's events keep their order at equal
    ords), packed as the pass reads them: (ord, floats, ints, wallet ord, wallet account, wallet)."""
    ev_ord = ev["ord"].to_numpy()
    order = np.argsort(ev_ord, kind="stable").astype(np.int64)
    nat = np.iinfo(np.int64).min

    def floats(c: str) -> np.ndarray:
        return ev[c].fill_null(np.nan).to_numpy().astype(np.float64)

    evf = np.column_stack([floats("size"), floats("entry"), floats("iso_wallet"), floats("lev")])[order]
    flags = (
        ev["entry"].is_null().to_numpy() * FLAG_ENTRY_NULL
        + (ev["mode"] == "isolated").fill_null(False).to_numpy() * FLAG_ISOLATED
    )
    evi = np.column_stack(
        [pair_id, ev["seg_start_ms"].fill_null(nat).to_numpy(), ev["seg_start_blk"].fill_null(nat).to_numpy(), flags]
    ).astype(np.int64)[order]
    w_ord = wallets["ord"].to_numpy()
    w_row = np.argsort(w_ord, kind="stable").astype(np.int64)
    return (
        ev_ord[order].astype(np.int64),
        np.ascontiguousarray(evf),
        np.ascontiguousarray(evi),
        w_ord[w_row].astype(np.int64),
        wallet_user[w_row],
        wallets["wallet"].fill_null(np.nan).to_numpy().astype(np.float64)[w_row],
    )


def _offsets(codes: np.ndarray, n: int) -> np.ndarray:
    """CSR offsets of rows sorted by ``codes`` (n groups)."""
    return np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n))]).astype(np.int64)


def _rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)


_PL_TYPES = {
    "VARCHAR": pl.Utf8,
    "BIGINT": pl.Int64,
    "UBIGINT": pl.UInt64,
    "INTEGER": pl.Int32,
    "BOOLEAN": pl.Boolean,
    "DOUBLE": pl.Float64,
}


def _conform(table, df: pl.DataFrame) -> pl.DataFrame:
    return df.select([pl.col(c.name).cast(_PL_TYPES[c.type]) for c in table.columns])


def _steps_table(steps: pl.DataFrame, venue: str) -> pl.DataFrame:
    out = steps.select(
        pl.lit(venue).alias("venue"),
        "step_id",
        "step_group",
        "wave_id",
        "block_number",
        "time_ms",
        "coin",
        "liquidated_user",
        "liquidated_side",
        "adl_side",
        "action_hash",
        "legs",
        "closed_size",
        "notional_usd",
        "mark_px",
        pl.col("first_tid").cast(pl.UInt64),
        "pool_size",
        "unmatched_counter_legs",
    ).sort("step_id")
    return _conform(ADL_STEPS, out)


def _rows(i: int, n: int, F: np.ndarray, oi: np.ndarray, of: np.ndarray, src: int) -> dict[str, np.ndarray]:
    """A copy of one action's pool rows (the kernel's buffers are reused)."""
    return {
        "_i": np.full(n, i, dtype=np.int64),
        "F": F[:, :n].copy(),
        "oi": oi[:, :n].copy(),
        "of": of[:, :n].copy(),
        "src": np.full(n, src, dtype=np.int64),
    }


def _pools_table(
    kept: list[dict[str, np.ndarray]], step_id: np.ndarray, step_coin: np.ndarray, users: np.ndarray, venue: str
) -> pl.DataFrame:
    """Kept pool rows in the ``adl_pools`` layout (NULL where the replay's inputs are NULL, as SQL users expect),
    sorted by (step_id, user)."""
    F = np.concatenate([k["F"] for k in kept], axis=1)
    oi = np.concatenate([k["oi"] for k in kept], axis=1)
    of = np.concatenate([k["of"] for k in kept], axis=1)
    i = np.concatenate([k["_i"] for k in kept])
    src = np.concatenate([k["src"] for k in kept])
    nulls = oi[O_NULLS]

    def col(name: str, values: np.ndarray, *bits: int) -> pl.Series:
        mask = np.zeros(len(values), dtype=bool)
        for b in bits:
            mask |= (nulls & b) != 0
        v = pl.Series(name, values)
        return v.scatter(np.flatnonzero(mask), None) if mask.any() else v

    selected = oi[O_SELECTED].astype(bool)
    closed, size = of[X_CLOSED], F[K.SIZE]
    reason = oi[O_REASON]
    lev = F[K.LEV]
    # the account value's interval: the other coins' and the candidate's own coin's marks
    own = F[K.SIGN] * size * F[K.MARK]
    own_lo, own_hi = own * (F[K.F_LO] - 1.0), own * (F[K.F_HI] - 1.0)
    df = pl.DataFrame(
        [
            pl.Series("venue", [venue] * len(i)),
            pl.Series("step_id", step_id[i]),
            pl.Series("coin", step_coin[i]),
            pl.Series("user", users[oi[O_USER]]),
            pl.Series("side", np.where(F[K.SIGN] > 0, "long", "short")),
            pl.Series("size", size),
            col("entry_px", F[K.ENTRY], NULL_ENTRY),
            col("mark_px", F[K.MARK], NULL_MARK),
            pl.Series("mark_source", np.array(SOURCES)[src]),
            col("notional_usd", F[K.NOTIONAL], NULL_MARK),
            col("upnl_usd", F[K.UPNL], NULL_MARK, NULL_ENTRY),
            col("pnl_pct_price", of[X_PNL_PRICE], NULL_MARK, NULL_ENTRY),
            col("pnl_pct_margin", F[K.PNL_MARGIN], NULL_MARK, NULL_ENTRY, NULL_LEV),
            col("account_value_usd", F[K.AV], NULL_AV),
            col("wallet_balance_usd", F[K.WALLET], NULL_WALLET),
            col("leverage", lev, NULL_MARK, NULL_AV),
            col("margin_leverage", F[K.MARGIN_LEV], NULL_LEV),
            col("effective_leverage", lev, NULL_MARK, NULL_AV),
            pl.Series("margin_mode", np.where(oi[O_ISOLATED] > 0, "isolated", "cross")),
            col("maintenance_margin_usd", F[K.MM], NULL_MARK, NULL_MAXLEV),
            col("position_age_ms", of[X_AGE], NULL_SEG),
            pl.Series("selected", selected),
            pl.Series("fill_order", oi[O_FILL_ORDER]).cast(pl.Int32),
            pl.Series("closed_size", closed),
            pl.Series("partial", selected & (closed < size * (1 - 1e-12))),
            pl.Series("skip_reason", np.array(REASONS)[np.where(reason <= 3, reason, 0)]),
            col("lot_size", of[X_LOT], NULL_LOT),
            pl.Series("account_maintenance_margin_usd", F[K.ACCT_MM]),
            pl.Series("state_note", np.array(REASONS)[np.where(reason >= 4, reason, 0)]),
            pl.Series("account_gap", oi[O_GAP] > 0),
            col("account_value_low_usd", F[K.AV] + F[K.AV_LO] + np.fmin(own_lo, own_hi), NULL_AV),
            col("account_value_high_usd", F[K.AV] + F[K.AV_HI] + np.fmax(own_lo, own_hi), NULL_AV),
        ]
    ).with_columns(
        pl.when(pl.col("selected")).then(pl.col("fill_order")).alias("fill_order"),
        pl.col("skip_reason").replace("", None),
        pl.col("state_note").replace("", None),
        pl.col("position_age_ms").cast(pl.Int64),
    )
    return _conform(ADL_POOLS, df.sort("step_id", "user"))


def build_steps_and_pools(
    fills: pl.DataFrame | pl.LazyFrame,
    positions: pl.DataFrame | None,
    accounts: pl.DataFrame | None,
    asset_ctxs: pl.DataFrame | None,
    *,
    vault: str | None = None,
    gap_seconds: float = 5.0,
    venue: str = "hyperliquid",
    min_account_value: float | None = 0.0,
    max_mark_age_ms: int | None = None,
    cash: pl.DataFrame | None = None,
    misc_before_fills: bool = True,
    window: tuple[int | None, int | None] = (None, None),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every ADL action and its whole eligible pool with ranking features, outcomes, integrity notes and the
    account value's interval, in the ``adl_steps`` / ``adl_pools`` layouts (the table SQL users read; the
    audit itself never holds it). See :func:`audit_pass` for the arguments."""
    res = audit_pass(
        fills,
        positions,
        accounts,
        asset_ctxs,
        cash=cash,
        vault=vault,
        gap_seconds=gap_seconds,
        venue=venue,
        min_account_value=min_account_value,
        max_mark_age_ms=max_mark_age_ms,
        misc_before_fills=misc_before_fills,
        audit=False,
        window=window,
        keep_pools="all",
    )
    pools = (
        res.pools
        if res.pools is not None
        else pl.DataFrame(schema={c.name: _PL_TYPES[c.type] for c in ADL_POOLS.columns})
    )
    return res.steps, pools


class _Clock:
    """Wall and CPU time (both cores) per phase."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._t, self._c = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.laps[name] = round(now - self._t, 3)
        self.cpu[name] = round(cpu - self._c, 3)
        self._t, self._c = now, cpu
