"""The audit checks, one file each; importing this package registers them (in this order, which is the order
they run in). Add a check: a new file here with ``@register_check("name")`` on ``def check(ctx) -> list[Finding]``,
imported below, and a test of a graph that triggers it and one that does not (tests/test_audit.py)."""

from . import alignment, attention, coverage, launch, memory, norm, precision  # noqa: F401  (registers)
