"""Rank evidence of every rule over ADL actions: who each rule puts first, where the venue stopped, who was
passed over.

For each action and rule (:mod:`forensics.audit.kernel` computes it, one pass over the pool):

* an **opportunity** is a candidate ranked strictly above the action's *cut* with no legitimate reason to be
  passed over (``skip_reason``: below the minimum size, isolated with no overlap, opened in the same block;
  ``state_note``: a reconstructed state the data contradict or cannot confirm) and whose order against the
  cut cannot flip within the marks' uncertainty;
* a **skip** is an opportunity that was not selected;
* a **shape violation** is a selection the rule cannot produce: a selection out of the walk, or a partial
  close above the cut (a queue, and the cyclic walk, close whole positions except the last one they touch);
  for an allocation rule, a cut off its predicted share by more than rounding allows.

The cut is not simply the lowest selected rank. The venue walks its queue in fill order, so the walk is the
longest run of selections whose ranks rise along the fill order and the cut is its last rank; without a fill
order, the selected rank with the fewest exceptions ((unselected unexcused candidates above it) + (selected
candidates below it)). Either way one mis-ranked selection costs one shape violation instead of turning
everyone above it into a skip. Queue rules rank by score, ties by address ascending; the cyclic walk (dYdX v4)
by address from the first account filled, wrapping around; allocation rules rank nobody: their opportunities
are the candidates whose predicted share (fitted on how the selected were cut) is at least one lot.

Marks are published to five significant digits (a mark taken from a trade is a few basis points off), and an
account's value depends on the marks of every coin it holds, which move within their publication interval:
each candidate's score is an interval, and an order counts only where the intervals do not overlap.

Per account, opportunities and skips are counted per *episode* (the actions of one block and coin, which see
one state of the book) and kept per *window* (consecutive blocks of one wave, at most
:data:`WINDOW_ACTIONS` actions): the exemption test, the rule's cost and the search for rule changes read
these counts, never the pool rows. Evidence rows (the passes above the cut and the shape violations, with
ranks and features) are kept up to a budget per rule.

Two drivers feed the kernel: the replay (:mod:`forensics.reconstruct.stream`, pools never materialised) and
pools held as a table (:func:`pools_evidence`: hand-built pools, other venues, full ``adl_pools``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from forensics.compiled import njit

from . import kernel as K
from .rules import ALLOCATION, CYCLIC, RULES, Rule
from .table import PUBLISHED_MARK_SOURCES, feature_matrix, mark_tolerance, with_pool_columns

# actions per window at most (windows never split a block)
WINDOW_ACTIONS = 512
# evidence rows kept per rule
RECORD_BUDGET = 100_000
# pools held before the rules run over them (a batch is one parallel region: few, large ones)
BATCH_ACTIONS = 4096
BATCH_ROWS = 1 << 18
# features copied into evidence rows (the first ones of kernel.FEATURES)
RECORDED_FEATURES = K.FEATURES[: K.LEV + 1]

#: legitimate reasons not to count a pass-over, by code (0: none)
REASONS = (
    "",
    "below_min_size",
    "isolated_no_overlap",
    "opened_same_block",
    "state_contradicted",
    "state_unconfirmed_lost_leg",
    "state_unconfirmed_isolated_margin",
)

_KINDS = {"queue": K.QUEUE, CYCLIC: K.CYCLIC, ALLOCATION: K.ALLOCATION}


def assign_windows(block: np.ndarray, wave: np.ndarray, max_actions: int = WINDOW_ACTIONS) -> np.ndarray:
    """Window per action (actions in replay order): a new window at each wave, and at a block boundary once
    the window holds ``max_actions``."""
    out = np.zeros(len(block), dtype=np.int64)
    w, count = 0, 0
    for i in range(len(block)):
        if i and (wave[i] != wave[i - 1] or (count >= max_actions and block[i] != block[i - 1])):
            w += 1
            count = 0
        out[i] = w
        count += 1
    return out


def single_episodes(episode: np.ndarray) -> np.ndarray:
    """Episode codes with -1 for an episode of one action (its evidence is counted at once)."""
    ep = episode.astype(np.int64)
    return np.where(np.bincount(ep)[ep] == 1, -1, ep) if len(ep) else ep


@njit(cache=True)
def _tally(users: np.ndarray, selected: np.ndarray, presence: np.ndarray) -> None:
    for i in range(len(users)):
        presence[users[i], 0] += 1
        if selected[i]:
            presence[users[i], 1] += 1


@dataclass
class Evidence:
    """Every rule's evidence over the audited actions (ADL actions with a decision and all their legs)."""

    rules: list[Rule]
    users: np.ndarray  # address per account code (address order)
    actions: pl.DataFrame  # per audited action: step_id, episode, window, time_ms (and wave, when known)
    per_action: np.ndarray  # [rule, action, kernel.A_*]
    sums: np.ndarray  # [rule, kernel.S_*]
    prints: np.ndarray  # [rule]: fingerprint of the evidence
    # rule (index), window, user, opportunities, skips, gap_opportunities, gap_skips, cap_opportunities, caps
    counts: pl.DataFrame
    presence: pl.DataFrame  # window, user, eligible_steps, observed_selections
    rows: dict[str, pl.DataFrame | None] = field(default_factory=dict)  # None: over the record budget
    totals: np.ndarray | None = field(default=None, repr=False)  # [rule, user, kernel.C_*] over every window
    presence_totals: np.ndarray | None = field(default=None, repr=False)  # [user, (eligible, selected)]
    _present: tuple[np.ndarray, pl.Series] | None = field(default=None, repr=False)

    def index(self, rule: str) -> int:
        return next(i for i, r in enumerate(self.rules) if r.name == rule)

    @property
    def windows(self) -> pl.DataFrame:
        """window, from_ms, to_ms, actions, first_step, last_step, wave (null when unknown)."""
        wave = pl.col("wave").min() if "wave" in self.actions.columns else pl.lit(None, pl.Int64)
        return (
            self.actions.group_by("window")
            .agg(
                pl.col("time_ms").min().alias("from_ms"),
                pl.col("time_ms").max().alias("to_ms"),
                pl.len().alias("actions"),
                pl.col("step_id").min().alias("first_step"),
                pl.col("step_id").max().alias("last_step"),
                wave.alias("wave"),
            )
            .sort("window")
        )

    def account_counts(self, rule: str, windows: list[int] | np.ndarray | None = None) -> pl.DataFrame:
        """Per account: actions in a pool and selections; opportunities and skips in episodes, in total and in
        the episodes where its account value is uncertain (``gap_*``: it lost a fill before); selections
        above the cut and those closed only in part (``cap_opportunities``, ``caps``). ``windows``:
        only those (default: all; then every account of an audited pool has a row)."""
        cols = ["opportunities", "skips", "gap_opportunities", "gap_skips", "cap_opportunities", "caps"]
        if windows is None and self.totals is not None and self.presence_totals is not None:
            if self._present is None:  # accounts in any audited pool, and their addresses, once
                idx = np.flatnonzero(self.presence_totals[:, 0])
                self._present = idx, pl.Series("user", self.users[idx], dtype=pl.Utf8)
            idx, names = self._present
            t = self.totals[self.index(rule)][idx]
            kernel_cols = (K.C_OPP, K.C_SKIP, K.C_GAP_OPP, K.C_GAP_SKIP, K.C_CAP_OPP, K.C_CAP)
            return pl.DataFrame(
                [
                    names,
                    pl.Series("eligible_steps", self.presence_totals[idx, 0], dtype=pl.Int64),
                    *[pl.Series(x, t[:, k], dtype=pl.Int64) for x, k in zip(cols, kernel_cols)],
                    pl.Series("observed_selections", self.presence_totals[idx, 1], dtype=pl.Int64),
                ]
            )
        keep = pl.Series(
            np.asarray(windows, dtype=np.int32) if windows is not None else self.actions["window"].unique().to_numpy()
        ).implode()
        c = self.counts.filter((pl.col("rule") == self.index(rule)) & pl.col("window").is_in(keep))
        per = c.group_by("user").agg([pl.col(x).sum() for x in cols])
        pres = (
            self.presence.filter(pl.col("window").is_in(keep))
            .group_by("user")
            .agg(pl.col("eligible_steps").sum(), pl.col("observed_selections").sum())
        )
        out = pres.join(per, on="user", how="left").with_columns([pl.col(x).fill_null(0) for x in cols]).sort("user")
        return out.select(
            pl.Series("user", self.users[out["user"].to_numpy()], dtype=pl.Utf8),
            *[pl.col(x).cast(pl.Int64) for x in ["eligible_steps", *cols, "observed_selections"]],
        )

    def action_values(self, rule: str, column: int, windows: list[int] | np.ndarray | None = None) -> np.ndarray:
        v = self.per_action[self.index(rule), :, column]
        if windows is None:
            return v
        return v[np.isin(self.actions["window"].to_numpy(), np.asarray(windows))]

    def shape_violations(self, rule: str, windows: list[int] | np.ndarray | None = None) -> int:
        return int(self.action_values(rule, K.A_SHAPE, windows).sum())

    def selections(self) -> int:
        return int(self.per_action[0, :, K.A_SELECTED].sum()) if len(self.rules) else 0

    def rank_metrics(self, rule: str) -> dict:
        s = self.sums[self.index(rule)]
        if s[K.S_RANKED] <= 0:
            return {}
        vr = s[K.S_VIOLATION] / s[K.S_RANKED]
        return {
            "violation_rate": float(vr),
            "auc": 1.0 - float(vr),
            "top_k_precision": float(s[K.S_TOPK] / s[K.S_RANKED]),
        }

    def allocation_fit(self, rule: str) -> float | None:
        s = self.sums[self.index(rule)]
        return 1.0 - s[K.S_ALLOC_ERR] / (2.0 * s[K.S_ALLOC_CLOSED]) if s[K.S_ALLOC_CLOSED] > 0 else None

    def same_order(self, names: list[str]) -> dict[str, list[str]]:
        """Rules whose evidence is identical on every action (same ranks of the selections, cuts,
        opportunities, skips and shape violations): the data cannot tell them apart."""
        fp = {n: self.prints[self.index(n)] for n in names}
        return {a: [b for b in names if b != a and fp[a] == fp[b]] for a in names}


class Collector:
    """Accumulates the kernel's outputs action by action; drivers call :meth:`add` per action (in replay
    order), :meth:`end_window` when the window changes, then :meth:`finish`."""

    def __init__(
        self,
        rules: list[Rule],
        users: np.ndarray,
        pair_user: np.ndarray,
        n_actions: int,
        *,
        record_features: int = len(RECORDED_FEATURES),
        record_budget: int = RECORD_BUDGET,
        record_users: np.ndarray | None = None,
        record_all: bool = False,
        max_pool: int = 0,
    ) -> None:
        self.rules = rules
        self.record_all = record_all
        self.users = users
        n_users, n_pairs, r = len(users), len(pair_user), len(rules)
        self.codes = np.array([rule.code for rule in rules], dtype=np.int64)
        self.kinds = np.array([_KINDS[rule.kind] for rule in rules], dtype=np.int64)
        self.pair_user = np.ascontiguousarray(pair_user, dtype=np.int64)
        self.ep_last = np.full((r, n_pairs), -1, dtype=np.int64)
        self.ep_flags = np.zeros((r, n_pairs), dtype=np.uint8)
        self.counts = np.zeros((r, n_users, K.N_COUNTS), dtype=np.int32)
        self.totals = np.zeros((r, n_users, K.N_COUNTS), dtype=np.int32)  # over the windows closed so far
        self.presence = np.zeros((n_users, 2), dtype=np.int64)
        self.presence_totals = np.zeros((n_users, 2), dtype=np.int64)
        self.per_action = np.zeros((r, n_actions, K.N_ACTION_INTS), dtype=np.int64)
        self.sums = np.zeros((r, K.N_SUMS))
        self.prints = np.zeros(r, dtype=np.uint64)
        self.rec_users = (
            np.ones(n_users, dtype=np.bool_)
            if record_users is None
            else np.ascontiguousarray(record_users, dtype=np.bool_)
        )
        self.rec_n = np.zeros(r, dtype=np.int64)
        # untouched pages cost no memory: the budget is a ceiling, not an allocation
        self.rec_int = np.zeros((r, record_budget, 5), dtype=np.int64)
        self.rec_float = np.zeros((r, record_budget, K.N_RECORD_FLOATS))
        self.rec_feat = np.zeros((r, record_budget, record_features))
        self.window_counts: list[pl.DataFrame] = []
        self.window_presence: list[pl.DataFrame] = []
        # the kernel's view of all of the above, and the pools held until the rules run over them
        self.state = (
            self.codes,
            self.kinds,
            self.ep_last,
            self.ep_flags,
            self.pair_user,
            self.counts,
            self.per_action,
            self.sums,
            self.prints,
            self.rec_users,
            self.rec_n,
            self.rec_int,
            self.rec_float,
            self.rec_feat,
            n_users,
            record_all,
        )
        self.batch = K.new_batch(BATCH_ACTIONS, max(BATCH_ROWS, max_pool))

    def add(
        self,
        a: int,
        episode: int,
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
        """One audited action's pool (columns of ``F``; users are account codes, which are address ranks)."""
        _tally(users, selected, self.presence)
        K.add_to_batch(
            self.batch,
            self.state,
            a,
            episode,
            F,
            users,
            pairs,
            selected,
            fill_order,
            closed,
            partial,
            excused,
            gap,
            lot,
            reason,
        )

    def end_window(self, window: int) -> None:
        """Fold the window's open episodes and keep its per-account counts as records (and in the totals). Only
        the accounts of the window's pools can have counts: they are found once, not once per rule."""
        K.flush_batch(self.batch, self.state)
        K.flush_episodes(self.ep_last, self.ep_flags, self.pair_user, self.counts)
        users = np.flatnonzero(self.presence[:, 0])
        if not len(users):
            return
        c = self.counts[:, users]
        self.counts[:, users] = 0
        self.totals[:, users] += c
        r_idx, u_idx = np.nonzero(c[:, :, K.C_OPP])
        if len(r_idx):
            rows = c[r_idx, u_idx]
            self.window_counts.append(
                pl.DataFrame(
                    {
                        "rule": r_idx.astype(np.int16),
                        "window": np.full(len(r_idx), window),
                        "user": users[u_idx],
                        "opportunities": rows[:, K.C_OPP],
                        "skips": rows[:, K.C_SKIP],
                        "gap_opportunities": rows[:, K.C_GAP_OPP],
                        "gap_skips": rows[:, K.C_GAP_SKIP],
                        "cap_opportunities": rows[:, K.C_CAP_OPP],
                        "caps": rows[:, K.C_CAP],
                    }
                )
            )
        p = self.presence[users]
        self.presence_totals[users] += p
        self.window_presence.append(
            pl.DataFrame(
                {
                    "window": np.full(len(users), window),
                    "user": users,
                    "eligible_steps": p[:, 0],
                    "observed_selections": p[:, 1],
                }
            )
        )
        self.presence[users] = 0

    def finish(self, actions: pl.DataFrame, row_frame=None) -> Evidence:
        """The evidence; ``row_frame(rule, ints, floats, features)`` turns a rule's recorded rows into a frame
        (the driver knows what its rows are)."""
        K.flush_batch(self.batch, self.state)
        counts_schema = {
            "rule": pl.Int16,
            "window": pl.Int32,
            "user": pl.Int32,
            "opportunities": pl.Int32,
            "skips": pl.Int32,
            "gap_opportunities": pl.Int32,
            "gap_skips": pl.Int32,
            "cap_opportunities": pl.Int32,
            "caps": pl.Int32,
        }
        presence_schema = {
            "window": pl.Int32,
            "user": pl.Int32,
            "eligible_steps": pl.Int32,
            "observed_selections": pl.Int32,
        }
        counts = (
            pl.concat(self.window_counts).cast(counts_schema)
            if self.window_counts
            else pl.DataFrame(schema=counts_schema)
        )
        presence = (
            pl.concat(self.window_presence).cast(presence_schema)
            if self.window_presence
            else pl.DataFrame(schema=presence_schema)
        )
        rows: dict[str, pl.DataFrame | None] = {}
        for r, rule in enumerate(self.rules):
            if self.sums[r, K.S_OVERFLOW] > 0:
                rows[rule.name] = None
                continue
            n = int(self.rec_n[r])
            rows[rule.name] = (
                row_frame(rule, self.rec_int[r, :n], self.rec_float[r, :n], self.rec_feat[r, :n])
                if row_frame is not None
                else None
            )
        return Evidence(
            self.rules,
            self.users,
            actions,
            self.per_action,
            self.sums,
            self.prints,
            counts,
            presence,
            rows,
            totals=self.totals,
            presence_totals=self.presence_totals,
        )


def evidence_rows(
    rule: Rule,
    ints: np.ndarray,
    floats: np.ndarray,
    users: np.ndarray,
    actions: pl.DataFrame,
    reasons: tuple[str, ...] = REASONS,
) -> pl.DataFrame:
    """The recorded rows of a rule as a frame: step_id, user, rank, score, cut_rank, cut_score, cut_user,
    pool_size, selected_count, selected, opportunity, skip, shape_violation, excused, tied, skip_reason,
    predicted; ``row`` is the row's index within its action's pool (drivers join their own columns on it)."""
    flags = ints[:, 2]
    a = ints[:, 0]
    cut_user = actions["cut_user"].to_numpy() if "cut_user" in actions.columns else None
    reason = np.array(reasons, dtype=object)[ints[:, 4]]
    out = pl.DataFrame(
        {
            "step_id": actions["step_id"].to_numpy()[a],
            "_action": a,
            "row": ints[:, 3],
            "user": users[ints[:, 1]],
            "rank": pl.Series(floats[:, K.V_RANK]).fill_nan(None).cast(pl.Int64),
            "score": floats[:, K.V_SCORE],
            "cut_rank": floats[:, K.V_CUT_RANK].astype(np.int64),
            "cut_score": floats[:, K.V_CUT_SCORE],
            "selected": (flags & K.R_SELECTED) > 0,
            "opportunity": (flags & K.R_OPPORTUNITY) > 0,
            "skip": (flags & K.R_SKIP) > 0,
            "shape_violation": (flags & K.R_SHAPE) > 0,
            "excused": (flags & K.R_EXCUSED) > 0,
            "tied": (flags & K.R_TIED) > 0,
            "skip_reason": pl.Series(reason, dtype=pl.Utf8).replace("", None),
        }
    )
    if rule.kind == ALLOCATION:
        out = out.with_columns(pl.Series("predicted", floats[:, K.V_PREDICTED]))
    else:  # what the venue closed of a selected row (a capped take's evidence)
        out = out.with_columns(pl.Series("closed_size", floats[:, K.V_PREDICTED]).fill_nan(None))
    if cut_user is not None:
        out = out.with_columns(pl.Series("cut_user", cut_user[a]))
    return out.with_columns(pl.col("score").fill_nan(None), pl.col("cut_score").fill_nan(None))


# --- pools held as a table ----------------------------------------------------------------------------------


def _reason_codes(frame: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """(reason code per row, the names by code): a state note wins over a skip reason; reasons other than the
    known ones (other venues' pools) get codes after them."""
    names = frame.select(pl.coalesce("state_note", "skip_reason").fill_null("")).to_series()
    extra = tuple(sorted(set(names.unique().to_list()) - set(REASONS)))
    table = REASONS + extra
    return names.replace_strict({n: i for i, n in enumerate(table)}, return_dtype=pl.Int64).to_numpy(), table


def episodes(steps: pl.DataFrame) -> pl.DataFrame:
    """(step_id, episode): actions of one block (its time when blocks are missing) and coin share an episode."""
    at = (
        pl.coalesce(pl.col("block_number"), pl.col("time_ms")) if "block_number" in steps.columns else pl.col("time_ms")
    )
    return steps.select(
        "step_id", pl.struct(at.alias("at"), pl.col("coin").cast(pl.Utf8)).rank("dense").cast(pl.Int64).alias("episode")
    )


def pools_evidence(
    pools: pl.DataFrame,
    rules: list[Rule] | None = None,
    *,
    steps: pl.DataFrame | None = None,
    record_users: list[str] | None = None,
    record_budget: int = RECORD_BUDGET,
    record_all: bool = False,
) -> Evidence:
    """Every rule's evidence on pools held as a table (``adl_pools`` layout, one row per (step_id, user)).

    Only actions with a selection and all their legs in the data are audited. ``steps`` (``adl_steps`` rows)
    groups actions into episodes (block and coin) and windows (waves); without it each action is its own
    episode and all one window.
    ``record_users``: keep evidence rows of these accounts only (default: all); ``record_all``: every row of
    every pool (for inspection: see :func:`rule_evidence`)."""
    rules = rules or list(RULES.values())
    frame = with_pool_columns(pools).filter(pl.col("selected").fill_null(False).any().over("step_id"))
    if steps is not None and "unmatched_counter_legs" in steps.columns:  # a lost winner leg: not audited
        frame = frame.join(
            steps.filter(pl.col("unmatched_counter_legs") > 0).select("step_id"), on="step_id", how="anti"
        )
    users = np.sort(frame["user"].unique().to_numpy().astype(str)) if frame.height else np.zeros(0, dtype=str)
    user_code = np.searchsorted(users, frame["user"].to_numpy().astype(str)).astype(np.int64)
    step = frame["step_id"].to_numpy().astype(np.int64)
    order = np.lexsort((user_code, step))
    frame, user_code, step = frame[order], user_code[order], step[order]
    step_ids, starts, n = np.unique(step, return_index=True, return_counts=True)
    if steps is not None and "episode" not in frame.columns and steps.height:
        meta = steps.select("step_id", *[c for c in ("block_number", "time_ms", "wave_id") if c in steps.columns])
        meta = meta.join(episodes(steps), on="step_id", how="left")
        acts = pl.DataFrame({"step_id": step_ids}).join(meta, on="step_id", how="left")
    else:
        acts = pl.DataFrame({"step_id": step_ids})
    if "episode" not in acts.columns:
        acts = acts.with_columns((-pl.col("step_id") - 1).alias("episode"))
    acts = acts.with_columns(pl.col("episode").fill_null(-pl.col("step_id") - 1))
    for c, default in (("time_ms", 0), ("wave_id", 0), ("block_number", None)):
        if c not in acts.columns:
            acts = acts.with_columns(pl.lit(default, pl.Int64).alias(c))
    block = acts.select(pl.coalesce("block_number", "time_ms", "step_id")).to_series().to_numpy()
    window = (
        assign_windows(block, acts["wave_id"].fill_null(0).to_numpy())
        if steps is not None
        else np.zeros(len(step_ids), dtype=np.int64)
    )
    _, ep = np.unique(acts["episode"].to_numpy(), return_inverse=True)
    acts = acts.with_columns(pl.Series("episode", ep.astype(np.int64)), pl.Series("window", window))
    ep = single_episodes(ep)
    # without szDecimals, the smallest ADL cut seen in the coin: at least one lot, so a conservative stand-in
    lot = (
        frame.select(
            pl.col("lot_size")
            .fill_null(pl.col("closed_size").filter(pl.col("closed_size") > 0).min().over("coin"))
            .fill_null(0.0)
        )
        .to_series()
        .to_numpy()
    )
    mark = frame["mark_px"].cast(pl.Float64).to_numpy()
    published = frame["mark_source"].is_in(list(PUBLISHED_MARK_SOURCES)).fill_null(False).to_numpy()
    # the coin's szDecimals, where the pool says its lot (10^-szDecimals)
    sz_dec = -np.log10(frame["lot_size"].cast(pl.Float64).fill_null(np.nan).to_numpy())
    F = feature_matrix(frame, mark_tolerance(mark, published, np.round(sz_dec)))
    coin = frame["coin"].cast(pl.Utf8).fill_null("").to_numpy().astype(str)
    coin_code = np.unique(coin, return_inverse=True)[1].astype(np.int64)
    pair_key = user_code * (int(coin_code.max(initial=0)) + 1) + coin_code
    pair_keys, pairs = np.unique(pair_key, return_inverse=True)
    pair_user = pair_keys // (int(coin_code.max(initial=0)) + 1)
    boolean = lambda c: frame[c].fill_null(False).to_numpy().astype(np.bool_)  # noqa: E731
    selected, partial, gap = boolean("selected"), boolean("partial"), boolean("account_gap")
    excused = (frame["skip_reason"].is_not_null() | frame["state_note"].is_not_null()).to_numpy()
    fill_order = frame["fill_order"].fill_null(0).to_numpy().astype(np.int64)
    closed = frame["closed_size"].cast(pl.Float64).fill_null(0.0).to_numpy()
    reason, reason_names = _reason_codes(frame)
    rec_users = None if record_users is None else np.isin(users, np.asarray(record_users, dtype=str))
    if record_all:
        record_budget = max(record_budget, frame.height)
    col = Collector(
        rules,
        users,
        pair_user,
        len(step_ids),
        record_features=0,
        record_budget=record_budget,
        record_users=rec_users,
        record_all=record_all,
    )
    for a in range(len(step_ids)):
        s, e = starts[a], starts[a] + n[a]
        if a and window[a] != window[a - 1]:
            col.end_window(int(window[a - 1]))
        col.add(
            a,
            int(ep[a]),
            np.ascontiguousarray(F[:, s:e]),
            user_code[s:e],
            pairs[s:e],
            selected[s:e],
            fill_order[s:e],
            closed[s:e],
            partial[s:e],
            excused[s:e],
            gap[s:e],
            lot[s:e],
            reason[s:e],
        )
    if len(step_ids):
        col.end_window(int(window[-1]))
    cut_user_code = col.per_action[:, :, K.A_CUT_USER]

    def row_frame(rule: Rule, ints: np.ndarray, floats: np.ndarray, _feat: np.ndarray) -> pl.DataFrame:
        r = rules.index(rule)
        cu = cut_user_code[r]
        acts_r = acts.with_columns(pl.Series("cut_user", np.where(cu >= 0, users[np.maximum(cu, 0)], None)))
        rows = evidence_rows(rule, ints, floats, users, acts_r, reason_names)
        at = starts[ints[:, 0]] + ints[:, 3]
        sizes = pl.DataFrame(
            {"pool_size": n[ints[:, 0]], "selected_count": col.per_action[r, ints[:, 0], K.A_SELECTED]}
        )
        keep = [c for c in frame.columns if c not in rows.columns]
        return pl.concat([rows, sizes, frame[at].select(keep)], how="horizontal")

    return col.finish(
        acts.select("step_id", "episode", "window", "time_ms", pl.col("wave_id").fill_null(0).alias("wave")), row_frame
    )


def rule_evidence(pools: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """One row per candidate row of ``pools`` (actions with a decision) with rank, score, cut (rank, score,
    account), pool size, selected count, opportunity, skip, shape violation and excused, for ``rule`` (rank
    NULL for rows below every selection of their action): the evidence of small pools, for inspection."""
    ev = pools_evidence(pools, [rule], record_all=True)
    return ev.rows[rule.name].drop("_action", "row")
