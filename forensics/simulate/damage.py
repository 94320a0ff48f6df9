"""Damaged copies of a scenario written in Hyperliquid's formats, for robustness measurements.

Works on any scenario directory in the node layout (``node_fills_by_block/**.lz4`` or JSON lines, a
``snapshot.jsonl`` / clearinghouse snapshot, ``asset_ctxs.jsonl``), whoever generated it: the damage is
done to the files, the way data go wrong in the wild, never to a simulator's internal state.

Knobs (each a fraction or an amount, 0 = off):

* ``drop_fill_legs``: each fill event (one ``[user, fill]`` leg) is dropped with this probability;
* ``duplicate_block_lines``: each block line is written twice with this probability;
* ``drop_ctx_seconds``: each asset-context line (one second) is dropped with this probability;
* ``skew_local_time_ms``: every block's ``local_time`` moves by a uniform offset in +-this many ms (the
  node's wall clock; block time and fill times are untouched).

Files other than those are copied as they are (a ``truth.json`` is not copied). Everything is seeded.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import orjson

from forensics.formats.records import iso_ns


@dataclass(frozen=True)
class Damage:
    drop_fill_legs: float = 0.0
    duplicate_block_lines: float = 0.0
    drop_ctx_seconds: float = 0.0
    skew_local_time_ms: float = 0.0
    seed: int = 0

    @property
    def label(self) -> str:
        on = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.name != "seed" and getattr(self, f.name)]
        return ",".join(on) or "none"

    @classmethod
    def parse(cls, spec: str) -> Damage:
        """``"drop_fill_legs=0.01,seed=3"`` (``none`` or empty: no damage)."""
        kwargs: dict[str, Any] = {}
        names = {f.name: f.type for f in fields(cls)}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if part == "none":
                continue
            key, _, value = part.partition("=")
            if key not in names:
                raise ValueError(f"unknown damage knob {key!r} (knobs: {', '.join(names)})")
            kwargs[key] = int(value) if key == "seed" else float(value)
        return cls(**kwargs)


def _shift_local_time(text: str, offset_ms: float) -> str:
    """'2025-10-10T21:03:24.851959855' moved by ``offset_ms``, nanoseconds kept (past datetime's precision)."""
    ns = iso_ns(text, "local_time") + int(round(offset_ms * 1_000_000))
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).replace(tzinfo=None)
    return f"{t.isoformat(timespec='seconds')}.{ns % 1_000_000_000:09d}"


def _damage_blocks(lines: list[bytes], d: Damage, rng: np.random.Generator) -> list[bytes]:
    out = []
    for line in lines:
        if not line.strip():
            continue
        block = orjson.loads(line)
        events = block.get("events")
        if d.drop_fill_legs and isinstance(events, list):
            keep = rng.random(len(events)) >= d.drop_fill_legs
            block["events"] = [e for e, k in zip(events, keep) if k]
        if d.skew_local_time_ms and isinstance(block.get("local_time"), str):
            block["local_time"] = _shift_local_time(block["local_time"], rng.uniform(-1, 1) * d.skew_local_time_ms)
        text = orjson.dumps(block)
        out.append(text)
        if d.duplicate_block_lines and rng.random() < d.duplicate_block_lines:
            out.append(text)
    return out


def _read_lines(path: Path) -> list[bytes]:
    if path.suffix == ".lz4":
        with lz4.frame.open(path, "rb") as f:
            return f.read().splitlines()
    return path.read_bytes().splitlines()


def _write_lines(path: Path, lines: list[bytes]) -> None:
    data = b"\n".join(lines) + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".lz4":
        with lz4.frame.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def damage_scenario(src: Path, dst: Path, damage: Damage) -> dict[str, Any]:
    """Copy ``src`` to ``dst`` with ``damage`` applied; returns counts of what was done."""
    rng = np.random.default_rng(damage.seed)
    counts = {
        "block_lines": 0,
        "block_lines_written": 0,
        "fill_legs": 0,
        "fill_legs_written": 0,
        "ctx_seconds": 0,
        "ctx_seconds_written": 0,
    }
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        target = dst / rel
        if rel.name == "truth.json":  # what was planted stays with the scorer, never with the inputs
            continue
        if "node_fills" in rel.parts[0] and path.suffix in (".lz4", ".json", ".jsonl"):
            lines = [ln for ln in _read_lines(path) if ln.strip()]
            out = _damage_blocks(lines, damage, rng)
            counts["block_lines"] += len(lines)
            counts["block_lines_written"] += len(out)
            counts["fill_legs"] += sum(len(orjson.loads(ln).get("events") or []) for ln in lines)
            counts["fill_legs_written"] += sum(len(orjson.loads(ln).get("events") or []) for ln in out)
            _write_lines(target, out)
        elif rel.name.startswith("asset_ctxs") and rel.suffix == ".jsonl" and damage.drop_ctx_seconds:
            lines = [ln for ln in _read_lines(path) if ln.strip()]
            keep = rng.random(len(lines)) >= damage.drop_ctx_seconds
            keep[0] = True  # the first context carries the universe every later second refers to
            out = [ln for ln, k in zip(lines, keep) if k]
            counts["ctx_seconds"] += len(lines)
            counts["ctx_seconds_written"] += len(out)
            _write_lines(target, out)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return counts
