"""`liqf haircuts`: per-wave haircut and overshoot accounting and counterfactual ADL policies."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table as RichTable

from pipelines.cli.context import console, fail, no_adl_message, out, print_table, refresh_catalog, settings, window
from pipelines.cli.options import FROM, JSON, TO, example

app = typer.Typer()


@app.command(
    "haircuts",
    epilog=example(
        "liqf haircuts --from 2025-10-10T21:00 --to 2025-10-10T21:30",
        "liqf haircuts --gap-seconds 2 --price mark --json > haircuts.json",
    ),
)
def haircuts(
    venue: Annotated[str, typer.Option(help="Venue id.")] = "hyperliquid",
    since: FROM = None,
    until: TO = None,
    gap_seconds: Annotated[
        float, typer.Option("--gap-seconds", help="Gap between ADL legs that starts a new wave, s.")
    ] = 5.0,
    price: Annotated[
        str,
        typer.Option(
            help="Evaluation price of the two-pass replay: last_trade (Chitra), market (last non-ADL trade) or mark."
        ),
    ] = "last_trade",
    no_policies: Annotated[
        bool, typer.Option("--no-policies", help="Skip the counterfactual policies (no pool reconstruction).")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Per-wave haircut and overshoot accounting (deficit, needed budget, production haircut, overshoot) and
    counterfactual ADL policies."""
    # heavy (the reconstruction, scipy): imported when the command runs, so `liqf --help` starts fast
    from pipelines.analysis import accounting

    if price not in ("last_trade", "market", "mark"):
        raise fail(f"unknown --price {price!r}", "use last_trade, market or mark")
    if not gap_seconds > 0:
        raise fail(f"--gap-seconds must be positive, got {gap_seconds}", "the default is 5 s (Chitra et al.)")
    since_ms, until_ms = window(since, until)
    try:
        with console.status("accounting: waves, two-pass replay, policies"):
            result = accounting.run(
                settings.lake,
                venue=venue,
                since_ms=since_ms,
                until_ms=until_ms,
                gap_seconds=gap_seconds,
                price=price,
                policies=not no_policies,
            )
    except FileNotFoundError as exc:
        raise fail(str(exc), "ingest node fills first: liqf ingest hyperliquid --node-fills PATH") from None
    refresh_catalog(warn_only=True)
    if as_json:
        keys = ("waves", "totals", "policies")
        print(json.dumps({k: result[k] for k in keys}, default=str, indent=1))
        return
    if not result["waves"]:
        out.print(no_adl_message(result["fills"], "account", "read"), highlight=False)
        return
    usd = lambda v: "" if v is None else f"{v:,.0f}"  # noqa: E731
    t = RichTable(
        "wave",
        "start (UTC ms)",
        "legs",
        "deficit $",
        "needed $",
        "production $",
        "overshoot $",
        title=f"ADL waves (gap {gap_seconds:g} s, price {price})",
    )
    for w in result["waves"]:
        t.add_row(
            str(w["wave"]),
            str(w["start"]),
            f"{w['adl_legs']:,}",
            usd(w["deficit"]),
            usd(w["needed"]),
            usd(w["production"]),
            usd(w["overshoot"]),
        )
    tot = result["totals"]
    t.add_row(
        "total",
        "",
        f"{tot['adl_legs']:,}",
        usd(tot["deficit"]),
        usd(tot["needed"]),
        usd(tot["production"]),
        usd(tot["overshoot"]),
        style="bold",
    )
    print_table(t)
    lo, hi = tot["overshoot_band"]
    pr = tot["payout_ratio"]
    out.print(
        f"overshoot band over horizons 0-5 s: ${lo:,.0f} to ${hi:,.0f}; under-coverage ${tot['under_coverage']:,.0f}; "
        f"winners paid {'' if pr is None else f'{pr:.1%}'} of their profit at mark",
        highlight=False,
    )
    if result["policies"]:
        p = RichTable(
            "policy", "overshoot $", "accounts touched", "max haircut / equity", title="counterfactual policies"
        )
        for r in result["policies"]:
            p.add_row(
                r["name"],
                usd(r["overshoot"]),
                f"{r['accounts_touched']:,}",
                "" if r["max_haircut_share"] is None else f"{r['max_haircut_share']:.2%}",
            )
        print_table(p)
    out.print(
        "tables: adl_waves, adl_haircuts, policy_counterfactuals, cascade_timeline, backstop_coverage "
        f"in {settings.db}",
        highlight=False,
    )
