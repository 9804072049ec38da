"""Audit checks, registered like cost rules: ``@register_check("name")`` on a function of an `AuditContext`
returning a list of `Finding`s. Checks run in registration order; each is one file in graphperf/audit/checks/."""

from __future__ import annotations

from typing import Callable

__all__ = ["CHECKS", "register_check"]

#: name -> check function, in registration order.
CHECKS: dict[str, Callable] = {}


def register_check(name: str):
    """Register a check under `name` (ValueError if the name is taken)."""

    def do(fn: Callable) -> Callable:
        if name in CHECKS:
            raise ValueError(f"an audit check named {name!r} is already registered ({CHECKS[name].__name__})")
        CHECKS[name] = fn
        return fn

    return do
