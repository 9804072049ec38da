"""User-facing errors: one clear line (what, where, what to do) and an exit code.

`UsageError` (exit 2): the user asked for something that does not exist or cannot be read
(unknown target, bad flag, missing or unreadable file, unbound dimension).
`AnalysisError` (exit 1): the input was readable but could not be analysed.
The CLI prints ``error: <message>`` and exits with `exit_code`; no traceback.
"""

from __future__ import annotations

__all__ = ["GraphperfError", "UsageError", "AnalysisError"]


class GraphperfError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 1


class UsageError(GraphperfError):
    """Bad input from the user: exit code 2."""

    exit_code = 2


class AnalysisError(GraphperfError):
    """Readable input that could not be analysed: exit code 1."""

    exit_code = 1
