"""Did the venue change its ranking rule during the cascade? Change points over the evidence's windows.

A venue can switch its rule silently (one rule for the first waves, another from then on); no single rule then
fits, or one fits with many residuals. The search runs over the evidence's windows (one wave, or a part of a
long one), reading only counts the kernel already keeps per window:

1. **Candidates.** Every rule's raw cost per window (the skips and shape violations its ranking implies, counted
   per action) and a Viterbi path over (window, rule) that pays :data:`RAW_PENALTY` per change: the cheapest
   sequence of rules, in windows x rules steps.
2. **Segments.** Consecutive windows under one rule are a segment; a segment of fewer than
   :data:`MIN_SEGMENT_ACTIONS` actions joins its neighbour. Each segment's rule is chosen again by its *exact*
   cost, the same one the whole cascade is judged by (its own exemption test: exemptions needed + residual
   skips + shape violations), and neighbours under rules that rank identically merge.
3. **Decision.** The change is the answer only when every segment's rule fits its segment, each segment under
   another rule than the best single one saves more than :data:`LOCAL_PENALTY` (or :data:`CHANGE_SHARE` of
   the single rule's cost there, if more) against that rule on the same actions, or more than the cost margin
   where the single rule does not fit those actions, and the segmented explanation plus
   :data:`CHANGE_PENALTY` per change point is cheaper than the single rule overall. A flexible rule (the cyclic walk
   can start anywhere) can explain a few actions for free: the local saving keeps it from hiding exemptions.
   Otherwise the single rule stands (``changed: false``) and the best segmentation tried is stated.

The exemption test then runs once on every account's counts, each taken under the rule in force where it was
counted (:func:`segmented_exemption`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from . import kernel as K
from .evidence import Evidence
from .exemption import ExemptionResult, exemption_test, skip_evidence
from .identify import COST_MARGIN, Identification, judge

# a change in the candidate path costs this much raw cost (skips + shape violations)
RAW_PENALTY = COST_MARGIN
# a change point must save at least this much exact cost (accounts + actions) overall to be reported ...
CHANGE_PENALTY = COST_MARGIN
# ... and each segment under another rule must save, against the single rule on its actions, more than
# LOCAL_PENALTY and CHANGE_SHARE of the single rule's cost there, or more than the margin where the single
# rule does not fit the segment and the other does
LOCAL_PENALTY = 2 * COST_MARGIN
CHANGE_SHARE = 0.25
# a segment shorter than this (actions) joins its neighbour
MIN_SEGMENT_ACTIONS = 8


@dataclass
class RuleWindow:
    """A run of actions under one rule."""

    first_action: int  # step_id
    last_action: int
    from_ms: int
    to_ms: int
    rule: str
    cost: int
    actions: int
    fits: bool
    first_wave: int | None = None
    windows: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "windows"}


@dataclass
class ChangePoint:
    action: int  # the first step_id of the new rule
    time_ms: int
    wave: int | None
    from_rule: str
    to_rule: str


@dataclass
class RuleChanges:
    changed: bool
    windows: list[RuleWindow]
    change_points: list[ChangePoint]
    single_rule: str | None
    single_cost: int | None
    segmented_cost: int | None
    penalty: int = CHANGE_PENALTY
    note: str | None = None

    def as_dict(self) -> dict:
        return {
            "changed": self.changed,
            "windows": [w.as_dict() for w in self.windows],
            "change_points": [c.__dict__ for c in self.change_points],
            "single_rule": self.single_rule,
            "single_cost": self.single_cost,
            "segmented_cost": self.segmented_cost,
            "penalty_per_change": self.penalty,
            "note": self.note,
        }


def _raw_costs(ev: Evidence, windows: np.ndarray, n_windows: int) -> np.ndarray:
    """[rule, window]: skips + shape violations per window."""
    per = ev.per_action[:, : len(windows), K.A_SKIP] + ev.per_action[:, : len(windows), K.A_SHAPE]
    out = np.zeros((len(ev.rules), n_windows))
    for r in range(len(ev.rules)):
        out[r] = np.bincount(windows, weights=per[r], minlength=n_windows)
    return out


def _viterbi(cost: np.ndarray, penalty: float) -> np.ndarray:
    """The rule index per window of the cheapest path (ties: the earlier rule of the library, no change)."""
    n_rules, n_win = cost.shape
    dp = cost[:, 0].copy()
    back = np.zeros((n_rules, n_win), dtype=np.int64)
    for w in range(1, n_win):
        j = int(np.argmin(dp))
        switch = dp[j] + penalty
        stay = dp
        back[:, w] = np.where(stay <= switch, np.arange(n_rules), j)
        dp = np.minimum(stay, switch) + cost[:, w]
    path = np.empty(n_win, dtype=np.int64)
    path[-1] = int(np.argmin(dp))
    for w in range(n_win - 1, 0, -1):
        path[w - 1] = back[path[w], w]
    return path


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of equal labels."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    bounds = [0, *edges.tolist(), len(labels)]
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass
class _Exact:
    rule: str
    cost: int
    fits: bool
    result: ExemptionResult


def _exact(ev: Evidence, rule: str, windows: np.ndarray, q: float) -> _Exact:
    res = exemption_test(ev.account_counts(rule, windows), rule, q=q)
    j = judge(ev, rule, res, windows)
    return _Exact(rule, j.cost, j.fits, res)


def _best(ev: Evidence, windows: np.ndarray, q: float) -> _Exact:
    fits = [_exact(ev, r.name, windows, q) for r in ev.rules]
    order = {r.name: i for i, r in enumerate(ev.rules)}
    return min(fits, key=lambda f: (not f.fits, f.cost, order[f.rule]))


def search(identification: Identification, *, q: float = 0.05) -> RuleChanges:
    """Change points of the rule over the evidence's windows (see the module docstring)."""
    ev = identification.evidence
    single = identification.best_rule
    fits = {f.name: f for f in identification.rules}
    ranked = sorted(identification.rules, key=lambda f: (not f.fits, f.cost))
    single_fit = fits.get(single) if single else (ranked[0] if ranked else None)
    base = RuleChanges(False, [], [], single, single_fit.cost if single_fit else None, None)
    if ev is None or not ev.actions.height or single_fit is None:
        base.note = "no actions with a decision"
        return base
    win = ev.windows
    if win.height < 2 or ev.actions.height < 2 * MIN_SEGMENT_ACTIONS:
        base.note = "too few actions to compare windows"
        return base
    action_window = ev.actions["window"].to_numpy()
    path = _viterbi(_raw_costs(ev, action_window, int(action_window.max()) + 1), RAW_PENALTY)
    # windows (rows of ``win``) by candidate segment; short segments join the previous one (the first, the next)
    labels = path[win["window"].to_numpy()]
    sizes = win["actions"].to_numpy()
    segments = [list(range(a, b)) for a, b in _runs(labels)]
    merged: list[list[int]] = []
    for seg in segments:
        if merged and int(sizes[merged[-1]].sum()) < MIN_SEGMENT_ACTIONS:
            merged[-1].extend(seg)
        elif merged and int(sizes[seg].sum()) < MIN_SEGMENT_ACTIONS:
            merged[-1].extend(seg)
        else:
            merged.append(list(seg))
    if len(merged) > 1 and int(sizes[merged[-1]].sum()) < MIN_SEGMENT_ACTIONS:
        merged[-2].extend(merged.pop())
    if len(merged) < 2:
        base.note = "one rule explains every window best"
        return base
    same = ev.same_order([r.name for r in ev.rules if r.kind != "allocation"])
    wid = win["window"].to_numpy()
    parts = [(seg, _best(ev, wid[seg], q)) for seg in merged]
    # neighbours under one rule (or rules that rank identically) are one segment
    joined: list[tuple[list[int], _Exact]] = []
    for seg, ex in parts:
        if joined and (joined[-1][1].rule == ex.rule or ex.rule in same.get(joined[-1][1].rule, [])):
            rows = joined[-1][0] + seg
            joined[-1] = (rows, _exact(ev, joined[-1][1].rule, wid[rows], q))
        else:
            joined.append((seg, ex))
    windows = [_window(win, seg, ex) for seg, ex in joined]
    segmented = sum(ex.cost for _, ex in joined)
    base.windows, base.segmented_cost = windows, segmented
    changes = len(joined) - 1
    single_cost = single_fit.cost if single_fit.fits else None
    if changes == 0:
        base.note = "one rule explains every window best"
        return base
    if not all(ex.fits for _, ex in joined):
        base.note = "a segmentation was tried, but a segment's best rule does not fit it"
        return base
    reference = single or ranked[0].name
    for seg, ex in joined:
        if ex.rule == reference or ex.rule in same.get(reference, []):
            continue
        there = _exact(ev, reference, wid[seg], q)
        local, gain = there.cost, there.cost - ex.cost
        clear = gain > max(LOCAL_PENALTY, CHANGE_SHARE * local)
        misfit = not there.fits and gain > COST_MARGIN
        if not (clear or misfit):
            base.note = (
                f"{ex.rule} explains actions {int(win[seg]['first_step'].min())}-{int(win[seg]['last_step'].max())} "
                f"at cost {ex.cost} against {local} for {reference}: too small a saving to report a change"
            )
            return base
    if single_cost is not None and segmented + CHANGE_PENALTY * changes >= single_cost:
        base.note = (
            f"segments cost {segmented} + {CHANGE_PENALTY} per change against {single_cost} for {single}: "
            "no change reported"
        )
        return base
    base.changed = True
    base.change_points = [
        ChangePoint(b.first_action, b.from_ms, b.first_wave, a.rule, b.rule) for a, b in zip(windows, windows[1:])
    ]
    return base


def _window(win: pl.DataFrame, rows: list[int], ex: _Exact) -> RuleWindow:
    part = win[sorted(rows)]
    wave = part["wave"].min()
    return RuleWindow(
        int(part["first_step"].min()),
        int(part["last_step"].max()),
        int(part["from_ms"].min()),
        int(part["to_ms"].max()),
        ex.rule,
        ex.cost,
        int(part["actions"].sum()),
        ex.fits,
        int(wave) if wave is not None else None,
        part["window"].to_list(),
    )


def segmented_exemption(ev: Evidence, changes: RuleChanges, *, q: float = 0.05) -> ExemptionResult:
    """One exemption test on every account's counts, each counted under the rule in force in its window; the
    evidence rows are those of each segment's rule in its own actions."""
    counts = pl.concat([ev.account_counts(w.rule, w.windows) for w in changes.windows])
    cols = [c for c in counts.columns if c != "user"]
    combined = counts.group_by("user").agg([pl.col(c).sum() for c in cols]).sort("user")
    label = " then ".join(w.rule for w in changes.windows)
    result = exemption_test(combined, label, q=q)
    flagged = sorted(result.flagged_users)
    rows = []
    for w in changes.windows:
        r = ev.rows.get(w.rule)
        if r is None:
            continue
        steps = ev.actions.filter(pl.col("window").is_in(w.windows))["step_id"].implode()
        rows.append(r.filter(pl.col("step_id").is_in(steps)))
    if rows and flagged:
        result.evidence = skip_evidence(pl.concat(rows, how="diagonal_relaxed"), flagged)
    return result
