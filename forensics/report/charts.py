"""Report charts as self-contained inline SVG (matplotlib), safe to embed.

Text is drawn as glyph paths and SVG comments are stripped, so names taken from data (coin names,
addresses) can never become markup; math-text parsing is off so a ``$`` in a name is just a glyph. With parsing
off, matplotlib's default log-axis labels (``$\\mathdefault{10^{2}}$``) would print as that literal text, so every
axis here gets a plain formatter (:func:`_plain_log`, :func:`_usd_axis`).
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.axis import Axis  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from forensics.report.numbers import plain, usd_compact  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "path",
        "text.parse_math": False,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "liqf",  # deterministic ids
    }
)

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
BLUE, ORANGE, GREY, RED = "#2b6cb0", "#dd6b20", "#a0aec0", "#c53030"


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return _PROLOG.sub("", _METADATA.sub("", _COMMENT.sub("", buf.getvalue())))


def _label(text: object, width: int = 18) -> str:
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def _plain_log(axis: Axis) -> None:
    """Log scale with plain labels on the decades only (1, 10, 100, 1,000): no exponent markup, no crowded
    minor labels."""
    axis.set_major_locator(LogLocator(base=10, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _: plain(v)))
    axis.set_minor_formatter(NullFormatter())


def _usd_axis(axis: Axis) -> None:
    """Dollar ticks in readable units ($0, $10M, $20M) instead of an offset exponent (``1e7``)."""
    axis.set_major_locator(MaxNLocator(nbins=6, min_n_ticks=3))
    axis.set_major_formatter(FuncFormatter(lambda v, _: usd_compact(v)))


def message(text: str, *, width: float = 9, height: float = 1.2) -> str:
    """A chart-sized note instead of empty axes (nothing to draw)."""
    fig = plt.figure(figsize=(width, height))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="#4a5568")
    return _svg(fig)


def timeline(per_second: pl.DataFrame, waves: pl.DataFrame | None) -> str:
    """Liquidation and ADL legs per second; waves shaded. ``per_second``: t_s, liquidations, adl."""
    if not per_second.height:
        return message("No liquidation or ADL legs in the window: no cascade to draw.")
    fig, ax = plt.subplots(figsize=(9, 2.8))
    t0 = per_second["t_s"].min()
    x = (per_second["t_s"] - t0).to_numpy()
    ax.bar(x, per_second["liquidations"].to_numpy(), width=1.0, color=ORANGE, label="liquidation legs")
    ax.bar(x, per_second["adl"].to_numpy(), width=1.0, color=BLUE, alpha=0.8, label="ADL legs")
    if waves is not None and waves.height:
        for w in waves.iter_rows(named=True):
            ax.axvspan(
                w["start_ms"] / 1000 - t0,
                max(w["end_ms"] / 1000 - t0, w["start_ms"] / 1000 - t0 + 1),
                color=GREY,
                alpha=0.25,
                lw=0,
            )
    # whole seconds and counts; a cascade of a few seconds still gets a readable axis
    ax.set_xlim(-1, max(float(x.max()) + 1, 10))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    ax.set_xlabel("seconds since the window start")
    ax.set_ylabel("legs per second")
    return _svg(fig)


def bars(
    labels: list[object],
    values: list[float],
    *,
    xlabel: str,
    color: str = BLUE,
    highlight: str | None = None,
    usd: bool = False,
    empty: str = "Nothing to draw.",
) -> str:
    """Horizontal bars, largest on top; ``usd``: dollar ticks and each bar labelled with its amount; ``empty``:
    the note drawn instead when there are no bars."""
    if not values:
        return message(empty)
    fig, ax = plt.subplots(figsize=(7, 0.28 * max(len(labels), 3) + 0.8))
    names = [_label(v) for v in labels]
    colors = [RED if highlight is not None and str(lbl) == highlight else color for lbl in labels]
    y = list(range(len(values)))[::-1]
    drawn = ax.barh(y, values, color=colors)
    ax.set_yticks(y, names)
    ax.set_xlabel(xlabel)
    if usd:
        _usd_axis(ax.xaxis)
        ax.bar_label(drawn, labels=[usd_compact(v) for v in values], padding=3, fontsize=7, color="#4a5568")
        ax.margins(x=0.12)
    return _svg(fig)


def rule_comparison(fits: pl.DataFrame, best: str | None) -> str:
    """Each rule's cost (exemptions + residual skips + shape violations, log scale) and residual rate."""
    q = fits.sort(["cost", "rule"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.3 * max(q.height, 3) + 0.9), sharey=True)
    names = [_label(n, 20) for n in q["rule"]]
    y = list(range(q.height))[::-1]
    colors = [RED if n == best else BLUE for n in q["rule"]]
    costs = q["cost"].to_list()
    drawn = axes[0].barh(y, [max(c, 0.5) for c in costs], color=colors)
    axes[0].set_xscale("log")
    _plain_log(axes[0].xaxis)
    axes[0].bar_label(drawn, labels=[f"{c:,}" for c in costs], padding=2, fontsize=7, color="#4a5568")
    axes[0].margins(x=0.15)
    axes[0].set_xlabel("cost, log scale (lower = better):\nexemptions + residual skips + shape violations")
    axes[0].set_yticks(y, names)
    axes[1].barh(y, q["residual_rate"].fill_null(0.0).to_list(), color=colors)
    axes[1].set_xlabel("residual rate (share of opportunities)")
    return _svg(fig)


def skip_evidence(flags: list[dict[str, Any]]) -> str:
    """Per flagged account: actions above the cut and how many of them passed it over."""
    fig, ax = plt.subplots(figsize=(9, 0.3 * max(len(flags), 3) + 0.9))
    y = list(range(len(flags)))[::-1]
    ax.barh(y, [f["opportunities"] for f in flags], color=GREY, label="ranked above the cut")
    ax.barh(y, [f["skips"] for f in flags], color=RED, label="passed over (skips)")
    ax.set_yticks(y, [_label(f["user"], 14) for f in flags])
    ax.set_xlabel("ADL actions")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    return _svg(fig)


def rule_timeline(windows: list[dict[str, Any]]) -> str:
    """The rule in force over time: one row per rule, a segment per window of actions it explains best.
    ``windows``: ``from_ms``, ``to_ms`` and ``rule`` each."""
    if not windows:
        return message("no windows to draw")
    t0 = min(w["from_ms"] for w in windows)
    rules = list(dict.fromkeys(str(w["rule"]) for w in windows))
    span = max(max(w["to_ms"] for w in windows) - t0, 1) / 1000
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rules) + 1.1))
    palette = (RED, BLUE, ORANGE, "#805ad5", "#2c7a7b", "#b7791f")
    for w in windows:
        row = rules.index(str(w["rule"]))
        start = (w["from_ms"] - t0) / 1000
        width = max((w["to_ms"] - w["from_ms"]) / 1000, span / 200)  # a one-block window stays visible
        ax.broken_barh([(start, width)], (len(rules) - 1 - row - 0.35, 0.7), color=palette[row % len(palette)])
    ax.set_yticks(range(len(rules))[::-1], [_label(r, 22) for r in rules])
    ax.set_ylim(-0.6, len(rules) - 0.4)
    ax.set_xlabel("seconds since the first audited action")
    return _svg(fig)


def waves_budget(waves: pl.DataFrame) -> str:
    """Needed budget vs production haircut per wave (USD). Waves differ by orders of magnitude, so the axis is
    logarithmic when they span more than two decades, and every bar carries its amount (a $0 bar is a label)."""
    if not waves.height:
        return message("no ADL waves in the window")
    needed = waves["needed_usd"].fill_null(0).to_list()
    production = waves["production_0ms"].fill_null(0).to_list()
    fig, ax = plt.subplots(figsize=(9, 3.0))
    x = list(range(waves.height))
    positive = [v for v in needed + production if v > 0]
    log = bool(positive) and max(positive) / min(positive) > 100
    floor = min(positive) / 3 if log else 0.0
    for offset, values, color, label in (
        (-0.2, needed, GREY, "needed budget"),
        (0.2, production, BLUE, "production haircut (horizon 0)"),
    ):
        # on a log axis bars stand on the floor (a third of the smallest amount), so a $0 bar is a label there
        heights = [max(v, floor) - floor for v in values]
        drawn = ax.bar([i + offset for i in x], heights, bottom=floor, width=0.4, color=color)
        drawn.set_label(label)
        ax.bar_label(drawn, labels=[usd_compact(v) for v in values], padding=2, fontsize=7, color="#4a5568")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: usd_compact(v)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("USD (log scale)")
    else:
        _usd_axis(ax.yaxis)
        ax.set_ylabel("USD")
    ax.margins(y=0.15)
    ax.set_xticks(x, [str(w) for w in waves["wave"].to_list()])
    ax.legend(frameon=False, loc="upper right")
    ax.set_xlabel("wave")
    return _svg(fig)


def coverage(cov: pl.DataFrame) -> str:
    """Backstop coverage ratio over time."""
    fig, ax = plt.subplots(figsize=(9, 2.4))
    if cov.height:
        t0 = cov["time_ms"].min()
        for vault, g in cov.sort("time_ms").group_by("vault", maintain_order=True):
            ax.plot(((g["time_ms"] - t0) / 1000).to_list(), g["coverage_ratio"].to_list(), label=_label(vault[0], 14))
        ax.legend(frameon=False)
    ax.set_xlabel("seconds since the first observation")
    ax.set_ylabel("capacity / deficit")
    return _svg(fig)
