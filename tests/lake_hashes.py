"""Content hashes of every table in a lake, to compare a repaired lake with a clean one."""

from __future__ import annotations

from pathlib import Path

import duckdb

#: when a run happened, not what it computed
VOLATILE = {"ingested_at", "computed_at", "created_at", "analysed_at"}


def table_hashes(root: Path) -> dict[str, tuple[int, str]]:
    """``layer/table`` -> (rows, md5 of the rows in sorted order) over the committed parts only."""
    con = duckdb.connect()
    out: dict[str, tuple[int, str]] = {}
    for layer in ("normalized", "meta", "analytics"):
        for table in sorted(p for p in (root / layer).glob("*") if p.is_dir()):
            parts = sorted(str(p) for p in table.rglob("part-*.parquet"))
            if not parts:
                continue
            cols = [
                (r[0], r[1])
                for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [parts]).fetchall()
                if r[0] not in VOLATILE
            ]
            # doubles to 12 significant digits: two clean analyses differ in the last bit of a few
            # diagnostics (summation order), which is not what a repaired lake is checked for
            sel = ", ".join(f"""printf('%.12g', "{c}")""" if t in ("DOUBLE", "FLOAT") else f'"{c}"' for c, t in cols)
            n, digest = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) FROM "
                f"(SELECT ({sel})::VARCHAR AS r FROM read_parquet(?, union_by_name = true, hive_partitioning = false))",
                [parts],
            ).fetchone()
            out[f"{layer}/{table.name}"] = (n, digest)
    con.close()
    return out


def leftovers(root: Path) -> list[str]:
    """Temporaries, staging directories and any file that is not a committed part, raw input or manifest."""
    found = [str(p.relative_to(root)) for p in root.rglob(".tmp-*")]
    staging = root / ".staging"
    if staging.exists():
        found += [str(p.relative_to(root)) for p in staging.iterdir()]
    for layer in ("normalized", "meta", "analytics"):
        found += [
            str(p.relative_to(root))
            for p in (root / layer).rglob("*")
            if p.is_file() and not (p.name.startswith("part-") and p.suffix == ".parquet")
        ]
    return sorted(found)
