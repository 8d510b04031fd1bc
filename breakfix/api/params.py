"""Identifier parameters: node, machine, plan, workflow and ticket ids share one shape, checked at
the edge so a malformed id is a 422 that says so, never an error deeper in."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
PathId = Annotated[str, Path(min_length=1, max_length=253, pattern=ID_PATTERN)]
