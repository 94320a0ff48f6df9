"""Report charts as self-contained inline SVG (matplotlib), safe to embed.

Text is drawn as glyph paths and SVG comments are stripped, so names taken from data (coin names,
addresses) can never become markup; math-text parsing is off so a ``$`` in a name is just a glyph.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

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


def timeline(per_second: pl.DataFrame, waves: pl.DataFrame | None) -> str:
    """Liquidation and ADL legs per second; waves shaded. ``per_second``: t_s, liquidations, adl."""
    fig, ax = plt.subplots(figsize=(9, 2.8))
    if per_second.height:
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
        ax.legend(frameon=False, loc="upper right")
    ax.set_xlabel("seconds since the window start")
    ax.set_ylabel("legs per second")
    return _svg(fig)


def bars(
    labels: list[object], values: list[float], *, xlabel: str, color: str = BLUE, highlight: str | None = None
) -> str:
    """Horizontal bars, largest on top."""
    fig, ax = plt.subplots(figsize=(7, 0.28 * max(len(labels), 3) + 0.8))
    names = [_label(v) for v in labels]
    colors = [RED if highlight is not None and str(lbl) == highlight else color for lbl in labels]
    ax.barh(range(len(values))[::-1], values, color=colors)
    ax.set_yticks(range(len(values))[::-1], names)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def rule_comparison(fits: pl.DataFrame, best: str | None) -> str:
    """Each rule's cost (exemptions + residual skips + shape violations, log scale) and residual rate."""
    q = fits.sort(["cost", "rule"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.3 * max(q.height, 3) + 0.9), sharey=True)
    names = [_label(n, 20) for n in q["rule"]]
    y = list(range(q.height))[::-1]
    colors = [RED if n == best else BLUE for n in q["rule"]]
    axes[0].barh(y, [max(c, 0.5) for c in q["cost"].to_list()], color=colors)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("cost: exemptions + residual skips + shape violations (lower = better)")
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
    ax.legend(frameon=False)
    return _svg(fig)


def waves_budget(waves: pl.DataFrame) -> str:
    """Needed budget vs production haircut per wave (USD)."""
    fig, ax = plt.subplots(figsize=(9, 2.8))
    if waves.height:
        x = list(range(waves.height))
        ax.bar([i - 0.2 for i in x], waves["needed_usd"].fill_null(0).to_list(), width=0.4, color=GREY, label="needed")
        ax.bar(
            [i + 0.2 for i in x],
            waves["production_0ms"].fill_null(0).to_list(),
            width=0.4,
            color=BLUE,
            label="production (horizon 0)",
        )
        ax.set_xticks(x, [str(w) for w in waves["wave"].to_list()])
        ax.legend(frameon=False)
    ax.set_xlabel("wave")
    ax.set_ylabel("USD")
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
