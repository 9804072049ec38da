"""User-facing errors: one clear line (what, where, what to do) and an exit code.

`UsageError` (exit 2): the user asked for something that does not exist or cannot be read
(unknown target, bad flag, missing or unreadable file, unbound dimension).
`AnalysisError` (exit 1): the input was readable but could not be analysed.
`RuleError`: a cost rule refuses a node it cannot interpret (a shape or attribute outside what the
rule models); `count` reports that node as unknown with the message. Any other exception from a rule
is a bug in the rule and stops the analysis with the op and node named.
The CLI prints ``error: <message>`` and exits with `exit_code`; no traceback.
"""

from __future__ import annotations

__all__ = ["GraphperfError", "UsageError", "AnalysisError", "RuleError"]


class GraphperfError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 1


class UsageError(GraphperfError):
    """Bad input from the user: exit code 2."""

    exit_code = 2


class AnalysisError(GraphperfError):
    """Readable input that could not be analysed: exit code 1."""

    exit_code = 1


class RuleError(ValueError):
    """Raised by a cost rule for a node it does not model (the node becomes unknown, with this message).

    Example
    -------
    >>> from graphperf.errors import RuleError
    >>> def my_rule(ins, outs, attrs):
    ...     if ins[0].rank != 2:
    ...         raise RuleError(f"my_op: expects a matrix, got {ins[0]}")
    """
