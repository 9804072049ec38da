"""Command-line argument helpers every graphperf command shares: NAME=VALUE pairs (--set, --dim) and the
rule that a command never writes its result over one of its inputs. Below cli.py and the command
modules (calibrate, validate, mlir), so none of them imports cli.py."""

from __future__ import annotations

import os
from typing import Optional

from .errors import UsageError

__all__ = ["pairs", "refuse_overwriting"]


def pairs(values: tuple[str, ...], flag: str, as_int: bool) -> dict:
    """`--set`/`--dim` values as a dict (values int when `as_int`); one-line UsageError for a malformed item."""
    out: dict = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            example = "hbm_gbps=4800" if flag == "--set" else "batch=8"
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE, e.g. {flag} {example}")
        if as_int:
            try:
                out[key] = int(raw)
            except ValueError:
                raise UsageError(f"{flag} {item!r}: {raw!r} is not an integer") from None
        else:
            out[key] = raw
    return out


def refuse_overwriting(output: Optional[str], *inputs: Optional[str], flag: str = "-o") -> None:
    """UsageError when `output` is one of the command's input files: a report never replaces its input."""
    if not output or not os.path.exists(output):
        return
    for path in inputs:
        if path and os.path.exists(path) and os.path.samefile(output, path):
            raise UsageError(f"{flag} {output} is an input of this command ({path}); writing there would destroy "
                             "it: pass another file name")
