"""Canonical tables of the onchain area; registered into forensics.schema.ALL_TABLES."""

from __future__ import annotations

from forensics.schema import DECIMAL, Column, Table  # noqa: F401

C = Column

TABLES: dict[str, Table] = {}
