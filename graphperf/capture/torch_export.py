"""The torch.export frontend: an `ExportedProgram` (in memory or a `.pt2` file) -> `Graph`.

Shapes and dtypes come from each FX node's ``meta["val"]`` (fake tensors), so a model built on
the meta device is captured without materialising a weight. Parameters, buffers and lifted
constants become values of kind "weight"; user inputs become "input". ``getitem`` nodes are folded
into the outputs of the node they index. Module paths come from ``nn_module_stack``.

Loading a `.pt2` never unpickles arbitrary Python objects: archives holding pickled objects are
refused, and every ``torch.load`` inside runs with ``weights_only`` forced on.
"""

from __future__ import annotations

import os
import zipfile
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional

import torch
from torch.export import ExportedProgram

from ..errors import AnalysisError, UsageError
from ..ir import Graph
from .files import require_file
from .fx_nodes import FxNodeCapture, torch_dtype_name

__all__ = ["capture_module", "capture_exported", "load_pt2", "torch_dtype_name"]

_WEIGHT_KINDS = {"PARAMETER", "BUFFER", "CONSTANT_TENSOR"}


def capture_module(module: torch.nn.Module, args: tuple, kwargs: Optional[dict] = None, *,
                   name: str = "model") -> Graph:
    """Export `module` with torch.export (non-strict) and capture the program."""
    try:
        ep = torch.export.export(module, tuple(args), kwargs or {}, strict=False)
    except Exception as exc:  # export errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnalysisError(f"{name}: torch.export failed: {first}") from exc
    return capture_exported(ep, name=name)


@contextmanager
def _weights_only_loads() -> Iterator[None]:
    old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


def load_pt2(path: str | os.PathLike) -> ExportedProgram:
    """Load a `torch.export.save` archive safely; UsageError for anything else."""
    path = require_file(path, "a .pt2 file written by torch.export.save")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UsageError(f"{path}: not a readable .pt2 archive ({exc}); re-save it with torch.export.save") from None
    if bad is not None:
        raise UsageError(f"{path}: archive member {bad} is corrupt (truncated file?); re-save it with torch.export.save")
    if not any(n.endswith("models/model.json") for n in names):
        raise UsageError(f"{path}: not a torch.export archive (no models/model.json); save it with torch.export.save")
    pickled = [n for n in names if "/constants/custom_obj_" in n or "/constants/opaque_obj_" in n]
    if pickled:
        raise UsageError(f"{path}: holds pickled Python objects ({pickled[0]}); graphperf does not unpickle them")
    try:
        with _weights_only_loads():
            return torch.export.load(path)
    except Exception as exc:
        raise UsageError(f"{path}: torch.export.load failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _module_path(fx_node: torch.fx.Node) -> str:
    stack = fx_node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.replace("L['self'].", "").replace("L__self__.", "")


def _run(ep: ExportedProgram, name: str, dims: Optional[Mapping[str, int]]) -> Graph:
    kinds = {spec.arg.name: spec.kind.name for spec in ep.graph_signature.input_specs if hasattr(spec.arg, "name")}
    cap = FxNodeCapture(name, dims, _module_path)
    param_count = 0
    for fx_node in ep.graph.nodes:
        if fx_node.op == "placeholder":
            val = fx_node.meta.get("val")
            if kinds.get(fx_node.name) == "PARAMETER" and isinstance(val, torch.Tensor):
                param_count += val.numel()
            cap.placeholder(fx_node, "weight" if kinds.get(fx_node.name) in _WEIGHT_KINDS else "input")
        elif fx_node.op == "call_function":
            cap.call(fx_node)
        elif fx_node.op == "output":
            cap.output(fx_node)
    return cap.graph({"frontend": "torch.export", "parameter_count": int(param_count)})


def capture_exported(ep: ExportedProgram, name: str = "model", dims: Optional[Mapping[str, int]] = None) -> Graph:
    """Capture an ExportedProgram; `dims` binds symbolic sizes by symbol name (e.g. {"s0": 8})."""
    return _run(ep, name, dims)
