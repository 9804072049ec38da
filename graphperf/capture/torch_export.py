"""The torch.export frontend: an `ExportedProgram` (in memory or a `.pt2` file) -> `Graph`.

Shapes and dtypes come from each FX node's ``meta["val"]`` (fake tensors), so a model built on
the meta device is captured without materialising a weight. Parameters, buffers and lifted
constants become values of kind "weight"; user inputs become "input". ``getitem`` nodes are folded
into the outputs of the node they index. Module paths come from ``nn_module_stack``.

Loading a `.pt2` never unpickles arbitrary Python objects: archives holding pickled objects are
refused, and every ``torch.load`` inside runs with ``weights_only`` forced on. Custom ops (a
``torch.library`` op such as ``transformers::grouped_mm_fallback``) resolve only once the library
that registers them is imported: `import_libraries` imports the modules named by ``--import`` /
``import_modules=``, and a program that still calls an unregistered op is refused in one line that
names the op and the option, before torch's deserializer runs.

Dynamic dimensions are bound by the user's Dim names, torch's symbols or input axes, within the
ranges the program was exported for; `export_dims` says which names a program keeps and refuses
unknown names, out-of-range values and unbound dimensions in one line.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import zipfile
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import torch
from torch.export import ExportedProgram

from ..errors import AnalysisError, UsageError
from ..ir import Graph
from .export_dims import bind_dims
from .files import require_file
from .fx_nodes import FxNodeCapture, torch_dtype_name

__all__ = ["capture_module", "capture_exported", "load_pt2", "import_libraries", "torch_dtype_name"]

_WEIGHT_KINDS = {"PARAMETER", "BUFFER", "CONSTANT_TENSOR"}


def capture_module(module: torch.nn.Module, args: tuple, kwargs: Optional[dict] = None, *,
                   name: str = "model") -> Graph:
    """Export `module` with torch.export (non-strict) and capture the program.

    Parameters
    ----------
    module : torch.nn.Module
        The model; it is traced, not run (meta-device parameters work).
    args : tuple
        Example positional inputs.
    kwargs : dict, optional
        Example keyword inputs.
    name : str
        The graph's name.

    Returns
    -------
    Graph
        Every shape static, as the example inputs give them.

    Raises
    ------
    AnalysisError
        torch.export failed (the first line of its message).

    Example
    -------
    >>> import torch
    >>> from graphperf import capture_module
    >>> g = capture_module(torch.nn.Linear(8, 4), (torch.randn(2, 8),), name="fc")
    >>> g.name, [str(n.op) for n in g], str(g.values[g.outputs[0]].type)
    ('fc', ['matmul'], 'float32[2,4]')
    """
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


# Packages whose torch.library ops are registered by a submodule that importing the package does not load
# (transformers imports its modules lazily): `--import PACKAGE` imports these too.
OP_SUBMODULES: dict[str, tuple[str, ...]] = {
    "transformers": ("transformers.integrations.moe",),  # transformers::grouped_mm_fallback (MoE experts)
}


def import_libraries(modules: Sequence[str]) -> None:
    """Import each module in `modules` (libraries that register custom ops), and the op-registering
    submodules `OP_SUBMODULES` lists for it; UsageError naming the one that fails."""
    if isinstance(modules, str):
        modules = (modules,)
    for name in modules:
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"--import {name!r}: give a module name, e.g. --import transformers")
        try:
            for module in (name.strip(), *OP_SUBMODULES.get(name.strip(), ())):
                importlib.import_module(module)
        except Exception as exc:  # ImportError, or whatever the library raises while registering
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"--import {name}: cannot import {name} ({first}); install it or fix the module "
                             "name") from None


def _op_targets(node: Any, found: set[str]) -> None:
    """Every ``"torch.ops.<ns>.<op>.<overload>"`` node target in a serialized program (nested graphs too)."""
    if isinstance(node, dict):
        target = node.get("target")
        if isinstance(target, str) and target.startswith("torch.ops."):
            found.add(target)
        for value in node.values():
            if isinstance(value, (dict, list)):
                _op_targets(value, found)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _op_targets(value, found)


def _resolves(target: str) -> bool:
    obj: Any = torch
    try:
        for part in target.split(".")[1:]:
            obj = getattr(obj, part)
    except (AttributeError, RuntimeError):
        return False
    return True


def unregistered_ops(zf: zipfile.ZipFile, names: Iterable[str]) -> list[str]:
    """The op targets of the archive's serialized programs that do not resolve in this process."""
    found: set[str] = set()
    for name in names:
        if name.endswith(".json") and "/models/" in f"/{name}":
            try:
                _op_targets(json.loads(zf.read(name)), found)
            except (ValueError, UnicodeDecodeError):
                continue  # torch.export.load reports a malformed program itself
    return sorted(t for t in found if not _resolves(t))


@contextmanager
def _quiet_deserializer() -> Iterator[list[BaseException]]:
    """torch.export.load logs the cause of a failure as a multi-line traceback and then raises a generic
    error ("check the warnings above"); keep the log off the terminal and collect the logged causes."""

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                causes.append(record.exc_info[1])

    causes: list[BaseException] = []
    logger = logging.getLogger("torch.export")
    handlers, propagate, level = logger.handlers[:], logger.propagate, logger.level
    logger.handlers, logger.propagate = [_Collect(logging.WARNING)], False
    logger.setLevel(logging.WARNING)
    try:
        yield causes
    finally:
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_failure(path: str, exc: BaseException, causes: list[BaseException]) -> UsageError:
    """One line: the logged cause (the root of its chain) rather than torch's "check the warnings above";
    a program whose outputs are a library's classes (transformers' ModelOutput) names the --import."""
    cause = causes[-1] if causes else exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    reason = _first_line(cause)
    unregistered = re.search(r"Deserializing ([A-Za-z_][\w.]*)\.\w+ in pytree is not registered", reason)
    if unregistered:
        package = unregistered.group(1).split(".")[0]
        return UsageError(f"{path}: its inputs or outputs are {unregistered.group(1)} classes, which no imported "
                          f"library registers with torch's pytree; pass --import {package} (import_modules="
                          f"[{package!r}] in the API)")
    return UsageError(f"{path}: torch.export.load failed: {reason}")


def load_pt2(path: str | os.PathLike, import_modules: Sequence[str] = ()) -> ExportedProgram:
    """Load a `torch.export.save` archive safely; UsageError for anything else. `import_modules` are
    imported first (libraries that register the custom ops the program calls).

    Parameters
    ----------
    path : str or path
        A ``.pt2`` archive written by ``torch.export.save``. It is loaded with weights-only unpickling.
    import_modules : sequence of str
        As the CLI's ``--import``.

    Returns
    -------
    torch.export.ExportedProgram
        The program, to pass to `capture_exported`.

    Raises
    ------
    UsageError
        A missing or unreadable file, a corrupt archive, a program calling ops no imported library
        registers, or a module in `import_modules` that fails to import.

    Example
    -------
    >>> import os, tempfile, torch
    >>> from graphperf import capture_exported, load_pt2
    >>> ep = torch.export.export(torch.nn.Linear(8, 4), (torch.randn(2, 8),))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "fc.pt2")
    ...     torch.export.save(ep, path)
    ...     graph = capture_exported(load_pt2(path), name="fc.pt2")
    >>> [str(n.op) for n in graph]
    ['matmul']
    """
    import_libraries(import_modules)
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
    with zipfile.ZipFile(path) as zf:
        missing = unregistered_ops(zf, names)
    if missing:
        namespace, name = missing[0][len("torch.ops."):].split(".")[:2]
        op = f"{namespace}::{name}"
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"{path}: calls the custom op {op}{more}, which no imported library registers; pass "
                         f"--import MODULE (import_modules=[...] in the API) naming the library that registers "
                         f"the {namespace!r} ops, e.g. --import {namespace}")
    try:
        with _weights_only_loads(), _quiet_deserializer() as causes:
            return torch.export.load(path)
    except Exception as exc:
        raise _load_failure(str(path), exc, causes) from None


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
    """Capture an ExportedProgram; `dims` binds its dynamic sizes by ``torch.export.Dim`` name (``{"B": 8}``,
    in-memory programs only: a .pt2 file does not keep them), torch's symbol (``{"s77": 8}``) or input
    axis (``{"x.shape[0]": 8}``), within the exported ranges (`export_dims.bind_dims`).

    Parameters
    ----------
    ep : torch.export.ExportedProgram
        From ``torch.export.export`` or `load_pt2`.
    name : str
        The graph's name.
    dims : Mapping[str, int], optional
        Sizes for the program's dynamic dimensions; every one must be bound.

    Returns
    -------
    Graph
        Every shape static; ``graph.meta["dims"]`` holds `dims` when given.

    Raises
    ------
    UsageError
        An unbound or unknown dimension, or a size outside its exported range.

    Example
    -------
    >>> import torch
    >>> from graphperf import capture_exported
    >>> batch = torch.export.Dim("B", max=64)
    >>> ep = torch.export.export(torch.nn.Linear(8, 4), (torch.randn(2, 8),), dynamic_shapes=({0: batch},))
    >>> g = capture_exported(ep, name="fc", dims={"B": 16})
    >>> [v.type.shape for v in g.values.values() if v.kind == "input"]
    [(16, 8)]
    """
    graph = _run(ep, name, bind_dims(name, ep, dims))
    if dims:
        graph.meta["dims"] = dict(sorted(dims.items()))
    return graph
