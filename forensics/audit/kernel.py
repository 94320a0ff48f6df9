"""The compiled core of the audit: every rule's evidence on one ADL action, in one pass over its pool.

For each action the caller hands over the candidate rows of the pool as feature columns (``F``, one row
per feature, :data:`FEATURES`) with the outcome (selected, fill order, closed size, partial), the
legitimate-skip flag (``excused``), the lost-fill stratum (``gap``), the lot and the mark uncertainty.
:func:`action_evidence` then, for every rule of the library (:func:`add_to_batch` / :func:`flush_batch`:
many actions at once, in parallel over rules):

* **queue rules** (and the cyclic walk, whose key is the address distance from the first account filled):
  the exact rank of every selection by counting the rows above it (a binary search among the sorted
  selections per row, O(n log k); no sort of the pool), the cut (the longest run of selections whose ranks
  rise along the fill order, or without a fill order the rank with the fewest exceptions), and per row
  whether it is above the cut, tied with it within the mark's uncertainty (the row and the cut re-scored at
  both ends of the own coin's mark interval, each over its account value's interval from the other coins'
  marks: an order counts only when the intervals do not overlap), an opportunity, a skip or a shape
  violation;
* **allocation rules**: the per-action share fit from the selections (:func:`share_fit`,
  :func:`waterfill_level`), each row's predicted share, opportunities (owed at least one lot), skips and
  shape violations.

Nothing per row is kept unless asked: opportunities and skips are folded into (account, episode) flags
(an episode is the actions of one block and coin, which see one state of the book), then into per-account
counters of the current window, which the caller turns into records at window boundaries. Evidence rows
(the passes above the cut and the shape violations, with their rank) are recorded up to a budget per rule:
the identified rule has few, and a rule that exceeds the budget cannot be the one that fits.

The same function serves the replay (features computed from the replayed state,
:mod:`forensics.reconstruct.stream`) and pools held as a table (:mod:`forensics.audit.evidence`).
"""

from __future__ import annotations

import math

import numpy as np

from forensics.compiled import njit, prange

# --- feature rows of F (feature-major: F[k, i]) ---------------------------------------------------------
(
    SIZE,
    ENTRY,
    MARK,
    SIGN,
    NOTIONAL,
    UPNL,
    AV,
    WALLET,
    LEV,
    EFF_LEV,
    MM,
    ACCT_MM,
    PNL_MARGIN,
    MARGIN_LEV,
    AV_LO,
    AV_HI,
    AMM_LO,
    AMM_HI,
    F_LO,
    F_HI,
) = range(20)
FEATURES = (
    "size",
    "entry_px",
    "mark_px",
    "sign",
    "notional_usd",
    "upnl_usd",
    "account_value_usd",
    "wallet_balance_usd",
    "leverage",
    "effective_leverage",
    "maintenance_margin_usd",
    "account_maintenance_margin_usd",
    "pnl_pct_margin",
    "margin_leverage",
    "av_lo_delta",
    "av_hi_delta",
    "amm_lo_delta",
    "amm_hi_delta",
    "mark_lo_factor",
    "mark_hi_factor",
)
N_FEATURES = len(FEATURES)

# --- rule codes and kinds ---------------------------------------------------------------------------------
QUEUE, CYCLIC, ALLOCATION = 0, 1, 2
(
    HL_INDEX,
    HL_INDEX_LITERAL,
    BITMEX,
    BINANCE,
    OKX,
    UPNL_RULE,
    PNL_PCT,
    LEVERAGE,
    NOTIONAL_RULE,
    LEXICOGRAPHIC,
    RANDOM_CYCLIC,
    CONTRACTS_PRO_RATA,
    WEALTH_PRO_RATA,
    LEVERAGE_WATERFILL,
    BINANCE_POSITION_MM,
    HL_NODE_SCORE,
) = range(16)
# the node's score floors each factor (OtterSec's reading of the Hyperliquid binary)
NODE_SCORE_FLOOR = 1e-8

_EPS = 1e-12
# scores this close (relative) are equal in floating point
FLOAT_TIE = 1e-9
# allocation cuts count as a share of at least one lot above this relative slack ...
SHARE_SLACK = 1e-6
# ... and a cut may be off its fitted share by 1.5 lots plus this fraction of the share
SHARE_FIT_SLACK = 0.05

# --- per-row flags of recorded evidence -------------------------------------------------------------------
R_SELECTED, R_OPPORTUNITY, R_SKIP, R_SHAPE, R_EXCUSED, R_TIED = 1, 2, 4, 8, 16, 32
# per (pair, episode) flags
E_OPP, E_NONSKIP, E_GAP = 1, 2, 4
# per-account counters of the current window (caps: selected above the cut, closed only in part)
C_OPP, C_SKIP, C_GAP_OPP, C_GAP_SKIP, C_CAP_OPP, C_CAP = range(6)
N_COUNTS = 6
# per-(rule, action) outputs
A_DECIDED, A_CUT_RANK, A_CUT_USER, A_OPP, A_SKIP, A_SHAPE, A_SELECTED, A_POOL = range(8)
N_ACTION_INTS = 8
# per-rule sums
S_VIOLATION, S_TOPK, S_RANKED, S_ALLOC_ERR, S_ALLOC_CLOSED, S_OVERFLOW = range(6)
N_SUMS = 6
# recorded evidence columns (floats)
# (V_PREDICTED: an allocation rule's predicted cut; for an ordering rule, a selected row's closed size)
V_RANK, V_SCORE, V_CUT_RANK, V_CUT_SCORE, V_PREDICTED = range(5)
N_RECORD_FLOATS = 5


@njit(cache=True, inline="always")
def _clip_lo(x: float, lo: float) -> float:
    """max(x, lo) that keeps NaN (as a polars clip does)."""
    return lo if x < lo else x


@njit(cache=True)
def point(F: np.ndarray, i: int, f: float, dav: float, damm: float):
    """Row ``i``'s features at the own coin's mark x ``f`` with ``dav``/``damm`` added to its account value
    and account maintenance margin (the other coins' marks at an end of their interval): mark, notional, uPnL,
    account value, leverage, effective leverage, maintenance margin, account maintenance margin, PnL on margin.
    Only the row's own position moves with its coin's mark (the account's other positions are other coins)."""
    if f == 1.0 and dav == 0.0 and damm == 0.0:
        return (
            F[MARK, i],
            F[NOTIONAL, i],
            F[UPNL, i],
            F[AV, i],
            F[LEV, i],
            F[EFF_LEV, i],
            F[MM, i],
            F[ACCT_MM, i],
            F[PNL_MARGIN, i],
        )
    size, mark0, av0 = F[SIZE, i], F[MARK, i], F[AV, i]
    d = F[SIGN, i] * size * mark0 * (f - 1.0)
    av = av0 + d + dav
    grow = f * av0 / av
    pm = F[PNL_MARGIN, i]
    if not math.isnan(pm):
        margin = size * F[ENTRY, i] / F[MARGIN_LEV, i]
        if not math.isnan(margin):
            pm = pm + d / margin
    return (
        mark0 * f,
        F[NOTIONAL, i] * f,
        F[UPNL, i] + d,
        av,
        F[LEV, i] * grow,
        F[EFF_LEV, i] * grow,
        F[MM, i] * f,
        F[ACCT_MM, i] + F[MM, i] * (f - 1.0) + damm,
        pm,
    )


@njit(cache=True, inline="always")
def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


@njit(cache=True, inline="always")
def _score(
    rule: int,
    size: float,
    entry: float,
    sign: float,
    wallet: float,
    mark: float,
    notional: float,
    upnl: float,
    av: float,
    lev: float,
    eff: float,
    mm: float,
    amm: float,
    pm: float,
) -> float:
    """The rule's score (higher = deleveraged first) from the features at one mark point; the formula of each
    rule, once."""
    if rule == HL_INDEX:
        return (mark / entry if sign > 0 else entry / mark) * lev
    if rule == HL_INDEX_LITERAL:
        return (mark / entry) * lev
    if rule == BITMEX:
        pnl = upnl / _clip_lo(size * entry, _EPS)
        lv = _clip_lo(eff if not math.isnan(eff) else lev, _EPS)
        return pnl * lv if (pnl > 0 or math.isnan(pnl)) else pnl / lv
    if rule == BINANCE:
        pnl = _clip_lo(upnl, 0.0) / _clip_lo(wallet, 1.0)
        m = amm if not math.isnan(amm) else mm
        if math.isnan(av):
            return math.nan
        return pnl * (m / _clip_lo(av, _EPS)) if av > 0 else pnl * 0.0
    if rule == BINANCE_POSITION_MM:
        pnl = _clip_lo(upnl, 0.0) / _clip_lo(wallet, 1.0)
        if math.isnan(av):
            return math.nan
        return pnl * (mm / _clip_lo(av, _EPS)) if av > 0 else pnl * 0.0
    if rule == HL_NODE_SCORE:
        lev_f = _clip_lo(notional / av, NODE_SCORE_FLOOR) if av > 0 else NODE_SCORE_FLOOR
        ret = _clip_lo(_clip_lo(upnl, 0.0) / _clip_lo(size * entry, _EPS), NODE_SCORE_FLOOR)
        return lev_f * ret
    if rule == OKX:
        pnl = pm if not math.isnan(pm) else upnl / _clip_lo(size * entry, _EPS)
        mr = _clip_lo(av / _clip_lo(mm, _EPS), _EPS)
        return pnl / mr if (pnl > 0 or math.isnan(pnl)) else pnl * mr
    if rule == UPNL_RULE:
        return upnl
    if rule == PNL_PCT:
        return upnl / _clip_lo(size * entry, _EPS)
    if rule == LEVERAGE or rule == LEXICOGRAPHIC:
        return lev
    if rule == NOTIONAL_RULE:
        return notional
    return math.nan


@njit(cache=True)
def rule_key(rule: int, F: np.ndarray, i: int, f: float, dav: float, damm: float):
    """(k1, k2, k3): the rule's ranking key of row ``i`` at a mark point (higher = deleveraged first; a
    non-finite key counts as -inf, never first). Single-score rules use k1 only; the lexicographic rule
    ranks by (leverage, uPnL, -wallet)."""
    mark, notional, upnl, av, lev, eff, mm, amm, pm = point(F, i, f, dav, damm)
    k1 = _score(
        rule, F[SIZE, i], F[ENTRY, i], F[SIGN, i], F[WALLET, i], mark, notional, upnl, av, lev, eff, mm, amm, pm
    )
    if rule == LEXICOGRAPHIC:
        return _finite(k1), _finite(upnl), _finite(-F[WALLET, i])
    return _finite(k1), 0.0, 0.0


@njit(cache=True)
def rule_keys(rule: int, F: np.ndarray, out: np.ndarray) -> None:
    """Every row's key at the published marks into ``out`` (3 x n): :func:`rule_key` with the rule chosen
    once, not per row."""
    n = F.shape[1]
    for j in range(3):
        for i in range(n):
            out[j, i] = 0.0
    for i in range(n):
        out[0, i] = _finite(
            _score(
                rule,
                F[SIZE, i],
                F[ENTRY, i],
                F[SIGN, i],
                F[WALLET, i],
                F[MARK, i],
                F[NOTIONAL, i],
                F[UPNL, i],
                F[AV, i],
                F[LEV, i],
                F[EFF_LEV, i],
                F[MM, i],
                F[ACCT_MM, i],
                F[PNL_MARGIN, i],
            )
        )
    if rule == LEXICOGRAPHIC:
        for i in range(n):
            out[1, i] = _finite(F[UPNL, i])
            out[2, i] = _finite(-F[WALLET, i])


@njit(cache=True, inline="always")
def _before(a1: float, a2: float, a3: float, aa: int, b1: float, b2: float, b3: float, ba: int) -> bool:
    """Row a is ranked before row b: keys descending, then address ascending."""
    if a1 != b1:
        return a1 > b1
    if a2 != b2:
        return a2 > b2
    if a3 != b3:
        return a3 > b3
    return aa < ba


@njit(cache=True)
def _sort_rows(rows: np.ndarray, K: np.ndarray, addr: np.ndarray) -> np.ndarray:
    """``rows`` in rank order (merge sort with the ranking comparator; K is 3 x n)."""
    n = len(rows)
    a = rows.copy()
    b = np.empty_like(a)
    width = 1
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                x, y = a[i], a[j]
                if _before(K[0, y], K[1, y], K[2, y], addr[y], K[0, x], K[1, x], K[2, x], addr[x]):
                    b[k] = y
                    j += 1
                else:
                    b[k] = x
                    i += 1
                k += 1
            while i < mid:
                b[k] = a[i]
                i += 1
                k += 1
            while j < hi:
                b[k] = a[j]
                j += 1
                k += 1
            lo += 2 * width
        a, b = b, a
        width *= 2
    return a


@njit(cache=True)
def _increasing_run(ranks: np.ndarray) -> np.ndarray:
    """Mask of a longest strictly increasing subsequence of ``ranks`` (patience sorting), the one ending
    lowest among the longest."""
    n = len(ranks)
    tails = np.empty(n, np.int64)
    tail_at = np.empty(n, np.int64)
    prev = np.full(n, -1, np.int64)
    length = 0
    for i in range(n):
        r = ranks[i]
        lo, hi = 0, length
        while lo < hi:  # bisect_left
            mid = (lo + hi) // 2
            if tails[mid] < r:
                lo = mid + 1
            else:
                hi = mid
        tails[lo] = r
        tail_at[lo] = i
        prev[i] = tail_at[lo - 1] if lo > 0 else -1
        if lo == length:
            length += 1
    keep = np.zeros(n, np.bool_)
    i = tail_at[length - 1] if length > 0 else -1
    while i >= 0:
        keep[i] = True
        i = prev[i]
    return keep


@njit(cache=True)
def share_fit(w: np.ndarray, closed: np.ndarray, size: np.ndarray, selected: np.ndarray) -> tuple[float, float]:
    """(a, b) of the predicted cut ``clip(a w + b, 0, size)`` of one action: ``a`` the pro-rata fraction, ``b``
    >= 0 an equal share of what capped positions could not take (venues, and generators, that hand out the
    excess lot by lot to everyone with room). Least squares on the partial cuts (those not capped by the
    position); with fewer than two of them, b = 0 and a is the selected accounts' total over their weight."""
    n = 0.0
    sw = sc = sww = swc = 0.0
    sel_c = sel_w = 0.0
    for i in range(len(w)):
        if not selected[i]:
            continue
        sel_c += closed[i]
        sel_w += w[i]
        if closed[i] < size[i] * (1 - 1e-9) and closed[i] > 0:
            n += 1.0
            sw += w[i]
            sc += closed[i]
            sww += w[i] * w[i]
            swc += w[i] * closed[i]
    if n >= 2:
        mw, mc = sw / n, sc / n
        var, cov = sww / n - mw * mw, swc / n - mw * mc
        if var > 0:
            slope = max(cov / var, 0.0)
            a, b = slope, max(mc - slope * mw, 0.0)
        else:
            a, b = (sc / sw if sw != 0 else math.nan), 0.0
    else:
        a, b = (sel_c / sel_w if sel_w != 0 else math.nan), 0.0
    if not math.isfinite(a):
        a = 0.0
    if not math.isfinite(b):
        b = 0.0
    return a, b


@njit(cache=True)
def waterfill_level(
    lev: np.ndarray, closed: np.ndarray, size: np.ndarray, selected: np.ndarray, partial: np.ndarray
) -> float:
    """The common leverage the selected were cut to: the median post-cut leverage of the partial cuts, else
    the lowest leverage among the selected, else +inf."""
    after = np.empty(len(lev))
    m = 0
    low = math.inf
    any_sel = False
    for i in range(len(lev)):
        if selected[i]:
            if not math.isnan(lev[i]):
                any_sel = True
                low = min(low, lev[i])
            if partial[i]:
                a = lev[i] * (1.0 - closed[i] / (size[i] if size[i] > 0 else 1.0))
                if not math.isnan(a):
                    after[m] = a
                    m += 1
    if m > 0:
        return float(np.median(after[:m]))
    return low if any_sel else math.inf


@njit(cache=True, inline="always")
def _mix(h: np.uint64, x: np.int64) -> np.uint64:
    """Order-independent fingerprint step (a splitmix64 of x, summed)."""
    z = np.uint64(x) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h + (z ^ (z >> np.uint64(31)))


@njit(cache=True, inline="always")
def _fold(
    r: int,
    p: int,
    ep: int,
    nonskip: bool,
    gap: bool,
    ep_last: np.ndarray,
    ep_flags: np.ndarray,
    pair_user: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Fold one opportunity into its (pair, episode) flags; a pair that meets a new episode first folds the
    finished one into its account's counters. An episode of one action (``ep`` < 0) is counted at once."""
    if ep < 0:
        u = pair_user[p]
        counts[r, u, C_OPP] += 1
        if not nonskip:
            counts[r, u, C_SKIP] += 1
        if gap:
            counts[r, u, C_GAP_OPP] += 1
            if not nonskip:
                counts[r, u, C_GAP_SKIP] += 1
        return
    if ep_last[r, p] != ep:
        _flush_pair(r, p, ep_last, ep_flags, pair_user, counts)
        ep_last[r, p] = ep
    fl = ep_flags[r, p] | E_OPP
    if nonskip:
        fl |= E_NONSKIP
    if gap:
        fl |= E_GAP
    ep_flags[r, p] = fl


@njit(cache=True, inline="always")
def _flush_pair(
    r: int, p: int, ep_last: np.ndarray, ep_flags: np.ndarray, pair_user: np.ndarray, counts: np.ndarray
) -> None:
    fl = ep_flags[r, p]
    if ep_last[r, p] >= 0 and fl & E_OPP:
        u = pair_user[p]
        skip = (fl & E_NONSKIP) == 0
        gap = (fl & E_GAP) != 0
        counts[r, u, C_OPP] += 1
        if skip:
            counts[r, u, C_SKIP] += 1
        if gap:
            counts[r, u, C_GAP_OPP] += 1
            if skip:
                counts[r, u, C_GAP_SKIP] += 1
    ep_flags[r, p] = 0
    ep_last[r, p] = -1


@njit(cache=True, parallel=True)
def flush_episodes(ep_last: np.ndarray, ep_flags: np.ndarray, pair_user: np.ndarray, counts: np.ndarray) -> None:
    """Fold every open (pair, episode) into the account counters (at a window boundary and at the end)."""
    for r in prange(ep_last.shape[0]):
        for p in range(ep_last.shape[1]):
            if ep_last[r, p] >= 0:
                _flush_pair(r, p, ep_last, ep_flags, pair_user, counts)


@njit(cache=True)
def _record(
    r: int,
    a: int,
    i: int,
    rank: float,
    score: float,
    cut_rank: float,
    cut_score: float,
    pred: float,
    flags: int,
    users: np.ndarray,
    reason: np.ndarray,
    F: np.ndarray,
    rec_n: np.ndarray,
    rec_int: np.ndarray,
    rec_float: np.ndarray,
    rec_feat: np.ndarray,
) -> bool:
    k = rec_n[r]
    if k >= rec_int.shape[1]:
        return False
    rec_int[r, k, 0] = a
    rec_int[r, k, 1] = users[i]
    rec_int[r, k, 2] = flags
    rec_int[r, k, 3] = i
    rec_int[r, k, 4] = reason[i]
    rec_float[r, k, V_RANK] = rank
    rec_float[r, k, V_SCORE] = score
    rec_float[r, k, V_CUT_RANK] = cut_rank
    rec_float[r, k, V_CUT_SCORE] = cut_score
    rec_float[r, k, V_PREDICTED] = pred
    for j in range(rec_feat.shape[2]):
        rec_feat[r, k, j] = F[j, i]
    rec_n[r] = k + 1
    return True


@njit(cache=True)
def _queue(
    r: int,
    rule: int,
    kind: int,
    a: int,
    ep: int,
    F: np.ndarray,
    users: np.ndarray,
    addr: np.ndarray,
    pairs: np.ndarray,
    selected: np.ndarray,
    fill_order: np.ndarray,
    closed: np.ndarray,
    partial: np.ndarray,
    excused: np.ndarray,
    gap: np.ndarray,
    start_addr: int,
    ep_last: np.ndarray,
    ep_flags: np.ndarray,
    pair_user: np.ndarray,
    counts: np.ndarray,
    act: np.ndarray,
    sums: np.ndarray,
    prints: np.ndarray,
    reason: np.ndarray,
    rec_users: np.ndarray,
    rec_n: np.ndarray,
    rec_int: np.ndarray,
    rec_float: np.ndarray,
    rec_feat: np.ndarray,
    n_users: int,
    record_all: bool,
) -> None:
    """Evidence of one ordering rule (queue, or the cyclic walk) on one action."""
    n = F.shape[1]
    K = np.empty((3, n))
    if kind == CYCLIC:  # walk order: address distance from the first account filled, ascending
        for i in range(n):
            d = addr[i] - start_addr
            if d < 0:
                d += n_users
            K[0, i], K[1, i], K[2, i] = -float(d), 0.0, 0.0
    else:
        rule_keys(rule, F, K)
    k = 0
    for i in range(n):
        if selected[i]:
            k += 1
    S = np.empty(k, np.int64)
    j = 0
    for i in range(n):
        if selected[i]:
            S[j] = i
            j += 1
    S = _sort_rows(S, K, addr)
    # c[i]: selections ranked before row i (unselected rows); histograms of c
    c = np.empty(n, np.int64)
    H = np.zeros(k + 1, np.int64)
    HU = np.zeros(k + 1, np.int64)
    pos_of = np.full(n, -1, np.int64)
    for j in range(k):
        pos_of[S[j]] = j
    for i in range(n):
        if selected[i]:
            c[i] = -1
            continue
        lo, hi = 0, k
        while lo < hi:
            mid = (lo + hi) // 2
            s = S[mid]
            if _before(K[0, s], K[1, s], K[2, s], addr[s], K[0, i], K[1, i], K[2, i], addr[i]):
                lo = mid + 1
            else:
                hi = mid
        c[i] = lo
        H[lo] += 1
        if not excused[i]:
            HU[lo] += 1
    rank = np.empty(k, np.int64)  # rank of the selection at sorted position j
    unsel_above = np.empty(k, np.int64)
    acc = 0
    accu = 0
    for j in range(k):
        acc += H[j]
        accu += HU[j]
        rank[j] = 1 + j + acc
        unsel_above[j] = accu
    # --- the cut
    known = k > 0
    for j in range(k):
        if fill_order[S[j]] <= 0:
            known = False
    in_order = np.zeros(k, np.bool_)
    cut_pos = -1
    if known:
        by_fill = np.argsort(fill_order[S], kind="mergesort")
        seq = rank[by_fill]
        mono = True
        for j in range(1, k):
            if seq[j] <= seq[j - 1]:
                mono = False
                break
        if mono:
            in_order[:] = True
            cut_pos = by_fill[k - 1]
        else:
            keep = _increasing_run(seq)
            last = -1
            for j in range(k):
                if keep[j]:
                    in_order[by_fill[j]] = True
                    last = by_fill[j]
            cut_pos = last
    else:
        best = np.iinfo(np.int64).max
        for j in range(k):
            cost = unsel_above[j] + (k - j - 1)
            if cost <= best:  # deeper on ties
                best = cost
                cut_pos = j
        for j in range(k):
            in_order[j] = j <= cut_pos
    cut_row = S[cut_pos]
    cut_rank = rank[cut_pos]
    c1, c2, c3 = K[0, cut_row], K[1, cut_row], K[2, cut_row]
    scored = kind != CYCLIC
    flip_cache = np.full((2, 3), math.nan)
    # --- rank metrics (over the whole pool)
    viol = 0
    topk = 0
    for j in range(k):
        viol += rank[j] - (j + 1)
        if rank[j] <= k:
            topk += 1
    if k < n:
        sums[r, S_VIOLATION] += viol / (k * (n - k))
        sums[r, S_TOPK] += topk / k
        sums[r, S_RANKED] += 1.0
    # --- rows
    n_opp = n_skip = n_shape = 0
    fp = prints[r]
    fp = _mix(fp, a * 1_000_003 + cut_rank)
    rflags = np.zeros(n, np.uint8)
    record_above = np.empty(n, np.int64)
    m_above = 0
    for i in range(n):
        sel = selected[i]
        if sel:
            j = pos_of[i]
            above = j < cut_pos
            fp = _mix(fp, (a * 7_919 + users[i]) * 65_537 + rank[j])
        else:
            above = c[i] <= cut_pos
        if not (above or sel):
            continue
        tied = False
        if scored and above:
            if rule == LEXICOGRAPHIC:
                tied = K[0, i] == c1 and K[1, i] == c2 and K[2, i] == c3
            else:
                tied = abs(K[0, i] - c1) <= FLOAT_TIE * max(abs(c1), 1e-300)
            if not tied and not sel:
                tied = _flips(rule, F, i, cut_row, flip_cache)
        opportunity = above and not excused[i] and not tied
        skip = opportunity and not sel
        shape = sel and ((not in_order[pos_of[i]]) or (above and partial[i]))
        fl = 0
        if sel:
            fl |= R_SELECTED
        if opportunity:
            fl |= R_OPPORTUNITY
            n_opp += 1
            fp = _mix(fp, (a * 7_919 + users[i]) * 4 + 1)
            _fold(r, pairs[i], ep, not skip, gap[i], ep_last, ep_flags, pair_user, counts)
        if skip:
            fl |= R_SKIP
            n_skip += 1
        if shape:
            fl |= R_SHAPE
            n_shape += 1
            fp = _mix(fp, (a * 7_919 + users[i]) * 4 + 2)
        if excused[i]:
            fl |= R_EXCUSED
        if tied:
            fl |= R_TIED
        if sel and above and opportunity and in_order[pos_of[i]]:
            counts[r, users[i], C_CAP_OPP] += 1
            if partial[i]:
                counts[r, users[i], C_CAP] += 1
        rflags[i] = fl
        if ((above and not sel) or shape) and rec_users[users[i]]:
            record_above[m_above] = i
            m_above += 1
    prints[r] = fp
    act[r, a, A_DECIDED] = 1
    act[r, a, A_CUT_RANK] = cut_rank
    act[r, a, A_CUT_USER] = users[cut_row]
    act[r, a, A_OPP] = n_opp
    act[r, a, A_SKIP] = n_skip
    act[r, a, A_SHAPE] = n_shape
    act[r, a, A_SELECTED] = k
    act[r, a, A_POOL] = n
    if record_all:  # every row, ranked (NaN below every selection: never above a cut), for inspection
        allrows = _sort_rows(np.arange(n), K, addr)
        floor_pos = 0
        for q in range(n):
            if selected[allrows[q]]:
                floor_pos = q
        cut_score = c1 if scored else math.nan
        for q in range(n):
            i = allrows[q]
            kept = q <= floor_pos or (
                scored
                and K[0, i] == K[0, allrows[floor_pos]]
                and K[1, i] == K[1, allrows[floor_pos]]
                and K[2, i] == K[2, allrows[floor_pos]]
            )
            score = K[0, i] if scored else math.nan
            _record(
                r,
                a,
                i,
                float(q + 1) if kept else math.nan,
                score,
                float(cut_rank),
                cut_score,
                closed[i] if selected[i] else math.nan,
                int(rflags[i]),
                users,
                reason,
                F,
                rec_n,
                rec_int,
                rec_float,
                rec_feat,
            )
        return
    # --- evidence rows, while the rule's budget lasts: passes above the cut and shape violations, ranked
    if sums[r, S_OVERFLOW] > 0:
        return
    if rec_n[r] + m_above > rec_int.shape[1]:
        sums[r, S_OVERFLOW] = 1.0
        return
    rows = _sort_rows(record_above[:m_above], K, addr)
    cut_score = c1 if scored else math.nan
    unsel_seen = 0
    for q in range(m_above):
        i = rows[q]
        if selected[i]:
            rk = rank[pos_of[i]]
        else:
            rk = 1 + c[i] + unsel_seen
            unsel_seen += 1
        score = K[0, i] if scored else math.nan
        _record(
            r,
            a,
            i,
            float(rk),
            score,
            float(cut_rank),
            cut_score,
            closed[i] if selected[i] else math.nan,
            int(rflags[i]),
            users,
            reason,
            F,
            rec_n,
            rec_int,
            rec_float,
            rec_feat,
        )


@njit(cache=True)
def _key_bound(rule: int, F: np.ndarray, i: int, f: float, upper: bool) -> tuple[float, float]:
    """(k1, k2) of row ``i`` at own-mark factor ``f`` at the low (or ``upper``) end of its intervals from the
    other coins' marks. Every rule is non-increasing in the account value and non-decreasing in the account's
    maintenance margin, so the ends are corners of the box; a box in which the account value can reach zero
    has no such order and is evaluated at every corner."""
    av_lo, av_hi, amm_lo, amm_hi = F[AV_LO, i], F[AV_HI, i], F[AMM_LO, i], F[AMM_HI, i]
    if av_lo == 0.0 and av_hi == 0.0 and amm_lo == 0.0 and amm_hi == 0.0:
        k1, k2, _ = rule_key(rule, F, i, f, 0.0, 0.0)
        return k1, k2
    d = F[SIGN, i] * F[SIZE, i] * F[MARK, i] * (f - 1.0)
    if F[AV, i] + d + av_lo > 0:
        if upper:
            k1, k2, _ = rule_key(rule, F, i, f, av_lo, amm_hi)
        else:
            k1, k2, _ = rule_key(rule, F, i, f, av_hi, amm_lo)
        return k1, k2
    b1 = math.inf if not upper else -math.inf
    b2 = b1
    for dav in (av_lo, av_hi):
        for damm in (amm_lo, amm_hi):
            k1, k2, _ = rule_key(rule, F, i, f, dav, damm)
            if math.isnan(k1) or math.isinf(k1):  # leverage unbounded: nothing is certain
                return (math.inf, math.inf) if upper else (-math.inf, -math.inf)
            if upper:
                b1, b2 = max(b1, k1), max(b2, k2)
            else:
                b1, b2 = min(b1, k1), min(b2, k2)
    return b1, b2


@njit(cache=True)
def _flips(rule: int, F: np.ndarray, i: int, cut: int, cache: np.ndarray) -> bool:
    """Could row ``i``'s order against the cut flip within the marks' uncertainty? Every candidate of an
    action shares its coin's mark, so both are re-scored at each end of the row's own-mark interval; at each
    end each is an interval over its account value (the other coins' marks), and the row is certainly above
    the cut only where its lowest key beats the cut's highest. ``cache``: the cut's highest keys at the last
    two mark factors asked (rows of one action share them)."""
    for end in range(2):
        f = F[F_LO, i] if end == 0 else F[F_HI, i]
        if cache[end, 0] != f:
            h1, h2 = _key_bound(rule, F, cut, f, True)
            cache[end, 0], cache[end, 1], cache[end, 2] = f, h1, h2
        hi1, hi2 = cache[end, 1], cache[end, 2]
        lo1, lo2 = _key_bound(rule, F, i, f, False)
        if rule == LEXICOGRAPHIC:
            certain = lo1 > hi1 or (lo1 == hi1 and lo2 > hi2)
        else:
            certain = lo1 > hi1
        if not certain:
            return True
    return False


@njit(cache=True)
def _allocation(
    r: int,
    rule: int,
    a: int,
    ep: int,
    F: np.ndarray,
    users: np.ndarray,
    addr: np.ndarray,
    pairs: np.ndarray,
    selected: np.ndarray,
    closed: np.ndarray,
    partial: np.ndarray,
    excused: np.ndarray,
    gap: np.ndarray,
    lot: np.ndarray,
    ep_last: np.ndarray,
    ep_flags: np.ndarray,
    pair_user: np.ndarray,
    counts: np.ndarray,
    act: np.ndarray,
    sums: np.ndarray,
    reason: np.ndarray,
    rec_users: np.ndarray,
    rec_n: np.ndarray,
    rec_int: np.ndarray,
    rec_float: np.ndarray,
    rec_feat: np.ndarray,
    record_all: bool,
) -> None:
    """Evidence of one allocation rule on one action: predicted shares from how the selected were cut;
    opportunities are the candidates owed at least one lot, skips those of them left out, shape violations
    the selected whose cut is off the prediction by more than rounding allows."""
    n = F.shape[1]
    size = F[SIZE]
    w = np.empty(n)
    for i in range(n):
        if rule == CONTRACTS_PRO_RATA:
            x = size[i]
        elif rule == WEALTH_PRO_RATA:
            x = F[UPNL, i]
        else:
            x = F[LEV, i]
        if math.isnan(x) or x < 0:
            x = 0.0
        w[i] = x
    if rule == WEALTH_PRO_RATA:  # no positive weight among the selected: contracts there
        tot = 0.0
        for i in range(n):
            if selected[i]:
                tot += w[i]
        if tot <= 0:
            for i in range(n):
                w[i] = size[i] if not (math.isnan(size[i]) or size[i] < 0) else 0.0
    pred = np.empty(n)
    if rule == LEVERAGE_WATERFILL:
        lev = F[LEV]
        level = waterfill_level(lev, closed, size, selected, partial)
        for i in range(n):
            v = size[i] * (1.0 - level / lev[i]) if lev[i] > level else 0.0
            pred[i] = v if math.isfinite(v) else 0.0
    else:
        fa, fb = share_fit(w, closed, size, selected)
        for i in range(n):
            v = min(w[i] * fa + fb, size[i])
            pred[i] = v if v > 0 else 0.0
    shaped = False
    for i in range(n):
        if selected[i] and partial[i]:
            shaped = True
            break
    n_opp = n_skip = n_shape = k = 0
    cut_score = math.inf
    err = tot_closed = 0.0
    K = np.zeros((3, n))
    m = 0
    rows = np.empty(n, np.int64)
    for i in range(n):
        owed = pred[i] >= lot[i] * (1 + SHARE_SLACK) and lot[i] > 0 and not excused[i]
        sel = selected[i]
        off = shaped and abs(closed[i] - pred[i]) > 1.5 * lot[i] + SHARE_FIT_SLACK * pred[i]
        opportunity = owed or sel
        skip = owed and not sel
        if sel:
            k += 1
            cut_score = min(cut_score, pred[i])
            err += abs(closed[i] - pred[i])
            tot_closed += closed[i]
        if opportunity:
            n_opp += 1
            K[0, i] = pred[i]
            rows[m] = i
            m += 1
        if skip:
            n_skip += 1
        if sel and off:
            n_shape += 1
        if opportunity:
            _fold(r, pairs[i], ep, not skip, gap[i], ep_last, ep_flags, pair_user, counts)
    sums[r, S_ALLOC_ERR] += err
    sums[r, S_ALLOC_CLOSED] += tot_closed
    act[r, a, A_DECIDED] = 1
    act[r, a, A_OPP] = n_opp
    act[r, a, A_SKIP] = n_skip
    act[r, a, A_SHAPE] = n_shape
    act[r, a, A_SELECTED] = k
    act[r, a, A_POOL] = n
    # ranked by predicted share among the rows that matter (owed a share, or cut): the cut is the lowest
    # ranked selection, its rank the selections plus the unselected rows ranked before it
    last = -1
    for q in range(m):
        i = rows[q]
        if selected[i] and (last < 0 or _before(K[0, last], 0.0, 0.0, addr[last], K[0, i], 0.0, 0.0, addr[i])):
            last = i
    before_last = 0
    for q in range(m):
        i = rows[q]
        if not selected[i] and _before(K[0, i], 0.0, 0.0, addr[i], K[0, last], 0.0, 0.0, addr[last]):
            before_last += 1
    cut_rank = k + before_last if last >= 0 else 0
    act[r, a, A_CUT_RANK] = cut_rank
    act[r, a, A_CUT_USER] = users[last] if last >= 0 else -1
    order = _sort_rows(rows[:m], K, addr) if record_all else rows[:0]
    if record_all:  # every row (rank NaN unless owed a share or cut), for inspection
        ranked = np.full(n, math.nan)
        for q in range(m):
            ranked[order[q]] = q + 1
        for i in range(n):
            sel = selected[i]
            owed = pred[i] >= lot[i] * (1 + SHARE_SLACK) and lot[i] > 0 and not excused[i]
            off = shaped and abs(closed[i] - pred[i]) > 1.5 * lot[i] + SHARE_FIT_SLACK * pred[i]
            flags = 0
            if sel:
                flags |= R_SELECTED
                if off:
                    flags |= R_SHAPE
            if owed or sel:
                flags |= R_OPPORTUNITY
            if owed and not sel:
                flags |= R_SKIP
            if excused[i]:
                flags |= R_EXCUSED
            _record(
                r,
                a,
                i,
                ranked[i],
                pred[i],
                float(cut_rank),
                cut_score,
                pred[i],
                flags,
                users,
                reason,
                F,
                rec_n,
                rec_int,
                rec_float,
                rec_feat,
            )
        return
    if sums[r, S_OVERFLOW] > 0:
        return
    want = 0
    for q in range(m):
        i = rows[q]
        off = shaped and abs(closed[i] - pred[i]) > 1.5 * lot[i] + SHARE_FIT_SLACK * pred[i]
        if ((not selected[i]) or off) and rec_users[users[i]]:
            want += 1
    if want == 0:
        return
    if rec_n[r] + want > rec_int.shape[1]:
        sums[r, S_OVERFLOW] = 1.0
        return
    order = _sort_rows(rows[:m], K, addr)
    for q in range(m):
        i = order[q]
        sel = selected[i]
        off = shaped and abs(closed[i] - pred[i]) > 1.5 * lot[i] + SHARE_FIT_SLACK * pred[i]
        if (sel and not off) or not rec_users[users[i]]:
            continue
        flags = R_OPPORTUNITY
        if sel:
            flags |= R_SELECTED | R_SHAPE
        else:
            flags |= R_SKIP
        _record(
            r,
            a,
            i,
            float(q + 1),
            pred[i],
            float(cut_rank),
            cut_score,
            pred[i],
            flags,
            users,
            reason,
            F,
            rec_n,
            rec_int,
            rec_float,
            rec_feat,
        )


@njit(cache=True)
def _walk_start(users: np.ndarray, selected: np.ndarray, fill_order: np.ndarray, n_users: int) -> int:
    """Where the cyclic walk starts: the account filled first (fill order 1); without one, the lowest address."""
    start = n_users + 1
    lowest = n_users + 1
    for i in range(len(users)):
        lowest = min(lowest, users[i])
        if selected[i] and fill_order[i] == 1:
            start = users[i]
    return lowest if start > n_users else start


@njit(cache=True)
def _rule_on_action(
    r: int,
    a: int,
    ep: int,
    walk_start: int,
    F: np.ndarray,
    users: np.ndarray,
    pairs: np.ndarray,
    selected: np.ndarray,
    fill_order: np.ndarray,
    closed: np.ndarray,
    partial: np.ndarray,
    excused: np.ndarray,
    gap: np.ndarray,
    lot: np.ndarray,
    reason: np.ndarray,
    state: tuple,
) -> None:
    """Rule ``r``'s evidence on one action (``users`` are account codes, which are address ranks)."""
    (
        rules,
        kinds,
        ep_last,
        ep_flags,
        pair_user,
        counts,
        act,
        sums,
        prints,
        rec_users,
        rec_n,
        rec_int,
        rec_float,
        rec_feat,
        n_users,
        record_all,
    ) = state
    if kinds[r] == ALLOCATION:
        _allocation(
            r,
            rules[r],
            a,
            ep,
            F,
            users,
            users,
            pairs,
            selected,
            closed,
            partial,
            excused,
            gap,
            lot,
            ep_last,
            ep_flags,
            pair_user,
            counts,
            act,
            sums,
            reason,
            rec_users,
            rec_n,
            rec_int,
            rec_float,
            rec_feat,
            record_all,
        )
    else:
        _queue(
            r,
            rules[r],
            kinds[r],
            a,
            ep,
            F,
            users,
            users,
            pairs,
            selected,
            fill_order,
            closed,
            partial,
            excused,
            gap,
            walk_start,
            ep_last,
            ep_flags,
            pair_user,
            counts,
            act,
            sums,
            prints,
            reason,
            rec_users,
            rec_n,
            rec_int,
            rec_float,
            rec_feat,
            n_users,
            record_all,
        )


@njit(cache=True)
def action_evidence(
    a: int,
    ep: int,
    F: np.ndarray,
    users: np.ndarray,
    pairs: np.ndarray,
    selected: np.ndarray,
    fill_order: np.ndarray,
    closed: np.ndarray,
    partial: np.ndarray,
    excused: np.ndarray,
    gap: np.ndarray,
    lot: np.ndarray,
    reason: np.ndarray,
    state: tuple,
) -> None:
    """Every rule's evidence on action ``a`` (episode ``ep``; -1: an episode of this action alone) whose pool
    rows are the columns of ``F``, one rule after another.

    ``users``: account code per row (0..n_users-1 in address order, so it is also the address rank);
    ``pairs``: (account, coin) code per row, for the episode flags; ``fill_order`` 0 where unknown or not
    selected. Outputs accumulate in the per-rule arrays of ``state`` (:class:`forensics.audit.evidence.Collector`)."""
    if not selected.any():
        return
    walk = _walk_start(users, selected, fill_order, state[14])
    for r in range(len(state[0])):
        _rule_on_action(
            r, a, ep, walk, F, users, pairs, selected, fill_order, closed, partial, excused, gap, lot, reason, state
        )


# --- batches: many actions' pools, then every rule over them, the rules spread over the cores ---------------
(B_ACTIONS, B_ROWS) = range(2)


def new_batch(max_actions: int, max_rows: int) -> tuple:
    """Buffers for up to ``max_actions`` actions of ``max_rows`` pool rows in all (see :func:`add_to_batch`)."""
    return (
        np.zeros(2, dtype=np.int64),  # actions, rows held
        np.zeros(max_actions, dtype=np.int64),  # action index
        np.zeros(max_actions, dtype=np.int64),  # episode
        np.zeros(max_actions + 1, dtype=np.int64),  # first row
        np.zeros(max_actions, dtype=np.int64),  # cyclic walk start
        np.zeros(max_rows * N_FEATURES),  # each action's F, feature-major, one block after another
        np.zeros(max_rows, dtype=np.int64),  # users
        np.zeros(max_rows, dtype=np.int64),  # pairs
        np.zeros(max_rows, dtype=np.bool_),  # selected
        np.zeros(max_rows, dtype=np.int64),  # fill order
        np.zeros(max_rows),  # closed
        np.zeros(max_rows, dtype=np.bool_),  # partial
        np.zeros(max_rows, dtype=np.bool_),  # excused
        np.zeros(max_rows, dtype=np.bool_),  # gap
        np.zeros(max_rows),  # lot
        np.zeros(max_rows, dtype=np.int64),  # reason code
    )


@njit(cache=True, parallel=True)
def _batch_evidence(batch: tuple, state: tuple) -> None:
    (
        count,
        b_a,
        b_ep,
        b_start,
        b_walk,
        BF,
        b_users,
        b_pairs,
        b_sel,
        b_fo,
        b_closed,
        b_part,
        b_exc,
        b_gap,
        b_lot,
        b_rsn,
    ) = batch
    n_b = count[B_ACTIONS]
    # one parallel region per batch, not per action: a region waits for its slowest thread, and on a busy
    # machine a descheduled thread costs a time slice per region
    for r in prange(len(state[0])):
        for b in range(n_b):
            s, e = b_start[b], b_start[b + 1]
            F = BF[s * N_FEATURES : e * N_FEATURES].reshape((N_FEATURES, e - s))
            _rule_on_action(
                r,
                b_a[b],
                b_ep[b],
                b_walk[b],
                F,
                b_users[s:e],
                b_pairs[s:e],
                b_sel[s:e],
                b_fo[s:e],
                b_closed[s:e],
                b_part[s:e],
                b_exc[s:e],
                b_gap[s:e],
                b_lot[s:e],
                b_rsn[s:e],
                state,
            )


@njit(cache=True)
def flush_batch(batch: tuple, state: tuple) -> None:
    """Every rule over the actions held, in action order per rule; empties the batch."""
    if batch[0][B_ACTIONS]:
        _batch_evidence(batch, state)
    batch[0][:] = 0


@njit(cache=True)
def add_to_batch(
    batch: tuple,
    state: tuple,
    a: int,
    ep: int,
    F: np.ndarray,
    users: np.ndarray,
    pairs: np.ndarray,
    selected: np.ndarray,
    fill_order: np.ndarray,
    closed: np.ndarray,
    partial: np.ndarray,
    excused: np.ndarray,
    gap: np.ndarray,
    lot: np.ndarray,
    reason: np.ndarray,
) -> None:
    """Hold action ``a``'s pool for the next :func:`flush_batch` (flushing first when full; a pool larger than
    the batch is audited at once). Arguments as :func:`action_evidence`."""
    if not selected.any():
        return
    (
        count,
        b_a,
        b_ep,
        b_start,
        b_walk,
        BF,
        b_users,
        b_pairs,
        b_sel,
        b_fo,
        b_closed,
        b_part,
        b_exc,
        b_gap,
        b_lot,
        b_rsn,
    ) = batch
    n = F.shape[1]
    if n > len(b_users):
        flush_batch(batch, state)
        action_evidence(a, ep, F, users, pairs, selected, fill_order, closed, partial, excused, gap, lot, reason, state)
        return
    if count[B_ACTIONS] == len(b_a) or count[B_ROWS] + n > len(b_users):
        flush_batch(batch, state)
    b, s = count[B_ACTIONS], count[B_ROWS]
    e = s + n
    b_a[b], b_ep[b], b_start[b], b_start[b + 1] = a, ep, s, e
    b_walk[b] = _walk_start(users, selected, fill_order, state[14])
    BF[s * N_FEATURES : e * N_FEATURES].reshape((N_FEATURES, n))[:, :] = F
    b_users[s:e] = users
    b_pairs[s:e] = pairs
    b_sel[s:e] = selected
    b_fo[s:e] = fill_order
    b_closed[s:e] = closed
    b_part[s:e] = partial
    b_exc[s:e] = excused
    b_gap[s:e] = gap
    b_lot[s:e] = lot
    b_rsn[s:e] = reason
    count[B_ACTIONS] += 1
    count[B_ROWS] = e
