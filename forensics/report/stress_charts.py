"""Charts of the stress-test report (inline SVG, same conventions as ``charts.py``)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from forensics.report.charts import BLUE, GREY, ORANGE, RED, _label, _svg, _usd_axis, message

CAUSE_COLORS = {
    "solvency": RED,
    "cascade": ORANGE,
    "liquidity": "#805ad5",
    "freeze": "#2c7a7b",
    "custody": "#b7791f",
    "fire_sale": "#d53f8c",
}


def timeline(defaults: list[dict]) -> str:
    """Defaulted nodes by contagion round, coloured by cause; a note instead of empty axes when none defaults."""
    if not defaults:
        return message("No node defaults in this scenario: no contagion round to draw.", width=8)
    fig, ax = plt.subplots(figsize=(8, 0.35 * max(len(defaults), 3) + 1.0))
    ys = list(range(len(defaults)))[::-1]
    for y, d in zip(ys, defaults):
        ax.barh(y, 1, left=d["round"] - 0.5, color=CAUSE_COLORS.get(d["cause"], GREY))
        ax.text(d["round"] + 0.55, y, d["cause"], va="center", fontsize=8)
    ax.set_yticks(ys, [_label(d["node"], 22) for d in defaults])
    top = max(d["round"] for d in defaults)
    ax.set_xlim(0.4, top + 1.6)
    ax.set_xticks(range(1, top + 1))
    ax.set_xlabel("contagion round")
    return _svg(fig)


def losses(rows: list[dict]) -> str:
    """Per node: claims not received (loss) and own shortfall (negative equity)."""
    rows = [r for r in rows if r["loss"] > 1e-9 or r["equity"] < -1e-9][:30]
    if not rows:
        return message("No node lost claims or ended with negative equity: no losses to draw.", width=8)
    fig, ax = plt.subplots(figsize=(8, 0.3 * max(len(rows), 3) + 1.0))
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.2, [r["loss"] for r in rows], height=0.4, color=ORANGE, label="claims not received")
    ax.barh(y - 0.2, [max(0.0, -r["equity"]) for r in rows], height=0.4, color=RED, label="own shortfall")
    ax.set_yticks(y, [_label(r["node"], 22) for r in rows])
    ax.set_xlabel("USD")
    _usd_axis(ax.xaxis)
    ax.legend(frameon=False, loc="lower right")
    return _svg(fig)


def waterfall(venues: list[dict]) -> str:
    """Per venue: bad debt split into insurance fund used, winners' haircut, venue capital, uncovered."""
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(venues), 3) + 1.0))
    y = np.arange(len(venues))[::-1]
    parts = [
        ("insurance fund", BLUE, lambda v: v["insurance_used"]),
        ("winners' haircut", ORANGE, lambda v: min(v["shortfall"], v["haircut"] * v["profit_base"])),
        ("venue capital", GREY, lambda v: v["capital_used"]),
        ("uncovered", RED, lambda v: max(0.0, v["residual"] - v["capital_used"])),
    ]
    left = np.zeros(len(venues))
    for name, color, fn in parts:
        vals = np.array([fn(v) for v in venues])
        ax.barh(y, vals, left=left, color=color, label=name)
        left += vals
    ax.set_yticks(y, [_label(v["venue"], 18) + (" (default)" if v["defaulted"] else "") for v in venues])
    ax.set_xlabel("bad debt absorbed, USD")
    _usd_axis(ax.xaxis)
    ax.legend(frameon=False, loc="lower right", fontsize=8)
    return _svg(fig)


def heatmaps(grid: dict) -> str:
    """Max haircut and number of defaults over a two-parameter sweep."""
    k1, k2 = grid["params"][:2]
    v1, v2 = grid["values"][k1], grid["values"][k2]
    H = np.full((len(v1), len(v2)), np.nan)
    N = np.full((len(v1), len(v2)), np.nan)
    for p in grid["points"]:
        i, j = v1.index(p[k1]), v2.index(p[k2])
        H[i, j], N[i, j] = p["max_haircut"], p["defaults"]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for ax, M, title, cmap in ((axes[0], H, "max haircut", "Oranges"), (axes[1], N, "defaults", "Reds")):
        im = ax.imshow(M, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=max(1.0, np.nanmax(M)))
        ax.set_xticks(range(len(v2)), [f"{x:g}" for x in v2], rotation=45, fontsize=7)
        ax.set_yticks(range(len(v1)), [f"{x:g}" for x in v1], fontsize=7)
        ax.set_xlabel(_label(k2, 30))
        ax.set_ylabel(_label(k1, 30))
        ax.set_title(title)
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if not math.isnan(M[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{M[i, j]:.0%}" if title == "max haircut" else f"{M[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                    )
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _svg(fig)


def line(grid: dict) -> str:
    """A one-parameter sweep: defaults and max haircut."""
    k = grid["params"][0]
    pts = sorted(grid["points"], key=lambda p: p[k])
    fig, ax = plt.subplots(figsize=(8, 2.6))
    x = [p[k] for p in pts]
    ax.plot(x, [p["defaults"] for p in pts], color=RED, marker="o", label="defaults")
    ax2 = ax.twinx()
    ax2.plot(x, [p["max_haircut"] for p in pts], color=ORANGE, marker="s", label="max haircut")
    ax.set_xlabel(_label(k, 40))
    ax.set_ylabel("defaults")
    ax2.set_ylabel("max haircut")
    return _svg(fig)


def network(names: list[str], kinds: list[str], edges: list[dict], rounds: dict[str, int]) -> str:
    """The obligation network: nodes coloured by default round, shaped by kind, edges by amount."""
    # heavy (networkx): only for the network picture
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(names)
    frozen = [(e["debtor"], e["creditor"]) for e in edges if e["kind"] == "frozen"]
    for e in edges:
        if e["creditor"] in g and e["debtor"] in g and e["amount"] > 0 and e["kind"] != "frozen":
            w = g.get_edge_data(e["debtor"], e["creditor"], {"w": 0.0})["w"]
            g.add_edge(e["debtor"], e["creditor"], w=w + e["amount"])
    for n in list(g.nodes):  # a custody pot belongs to its custodian (drawn, not an obligation)
        if "/" in n and n.split("/")[0] in g:
            g.add_edge(n.split("/")[0], n, w=0.0)
    # Kamada-Kawai for the shape, then a few spring steps so nodes with the same role do not overlap
    pos = (
        nx.spring_layout(g, pos=nx.kamada_kawai_layout(g), seed=7, iterations=30)
        if 1 < len(g) <= 300
        else nx.spring_layout(g, seed=7)
    )
    fig, ax = plt.subplots(figsize=(9, 6))
    ws = np.array([d["w"] for _, _, d in g.edges(data=True)]) if g.number_of_edges() else np.array([1.0])
    widths = 0.4 + 2.6 * np.log1p(ws) / max(np.log1p(ws).max(), 1e-12)
    nx.draw_networkx_edges(
        g, pos, ax=ax, width=list(widths), edge_color=GREY, arrows=True, arrowsize=8, connectionstyle="arc3,rad=0.08"
    )
    if frozen:
        nx.draw_networkx_edges(
            g, pos, edgelist=frozen, ax=ax, width=1.5, edge_color=RED, style="dashed", arrows=True, arrowsize=8
        )
    top = max(rounds.values(), default=1)
    cmap = plt.get_cmap("autumn")
    shapes = {"venue": "s", "vault": "s", "custodian": "D", "pot": "d", "issuer": "^", "trader": "o", "bank": "o"}
    kind_of = dict(zip(names, kinds))
    for shape in set(shapes.values()):
        nodes = [n for n in g.nodes if shapes.get(kind_of.get(n, "bank"), "o") == shape]
        if not nodes:
            continue
        colors = [cmap((rounds[n] - 1) / max(top - 1, 1) * 0.8) if n in rounds else "#c6f6d5" for n in nodes]
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            node_shape=shape,
            node_color=colors,
            edgecolors="#2d3748",
            linewidths=0.6,
            node_size=420,
            ax=ax,
        )
    if len(g) <= 60:
        nx.draw_networkx_labels(g, pos, labels={n: _label(n, 14) for n in g.nodes}, font_size=7, ax=ax)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=cmap(k / max(top - 1, 1) * 0.8), label=f"round {k + 1}")
        for k in range(min(top, 8))
    ] + [plt.Line2D([], [], marker="o", ls="", color="#c6f6d5", label="no default")]
    if frozen:
        handles.append(plt.Line2D([], [], color=RED, ls="--", label="frozen settlement"))
    ax.legend(handles=handles, frameon=False, fontsize=7, loc="upper left")
    ax.set_axis_off()
    return _svg(fig)
