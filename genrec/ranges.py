"""Range checks for the fields of a config dataclass (raised as ValueError, which config loading turns
into a usage error naming the key). A leaf module, so that every config section can use it."""

from __future__ import annotations

from typing import Any


def at_least(obj: Any, minimum: float, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {getattr(obj, name)}")


def between(obj: Any, low: float, high: float, *names: str) -> None:
    for name in names:
        if not low <= getattr(obj, name) <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {getattr(obj, name)}")
