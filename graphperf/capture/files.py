"""The one check every frontend makes before reading a model file: it exists and is a file."""

from __future__ import annotations

import os

from ..errors import UsageError

__all__ = ["require_file"]


def require_file(path: str | os.PathLike, kind: str) -> str:
    """`path` as a str; UsageError (what, where, what to do) if it is missing or a directory.

    `kind` names the expected file in the advice, e.g. "an .onnx file".
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file; pass {kind}")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not {kind}; pass the model file inside it")
    return path
