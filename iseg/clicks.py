"""Clicks and the evaluation click simulator of the standard protocol."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Click:
    """One user click at pixel (row, col); positive on the object, negative on background."""

    row: int
    col: int
    is_positive: bool
