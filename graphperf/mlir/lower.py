"""Lower a model to MLIR linalg-on-tensors through torch-mlir, keeping where each op came from.

Two frontends, one result (`Lowered`: an MLIR module plus what could not be lowered):

- torch.export: the program is decomposed with torch-mlir's decomposition table and imported with
  `torch_mlir.extras.fx_importer.FxImporter`; every imported op gets the location
  ``loc("gp:<node>")`` where ``<node>`` is the name of the torch.export node (before decomposition)
  it came from, i.e. the name of the node in graphperf's graph-level `Graph`. MLIR passes carry
  locations through lowering, so every linalg op names its graph node (`origin_of`).
- ONNX: `torch_mlir.extras.onnx_importer` imports the model (ONNX node names become locations),
  then ``torch-onnx-to-torch-backend-pipeline`` lowers it to the torch dialect. torch-mlir needs static
  shapes: `lower_onnx` binds the model's named dynamic dimensions from `dims` first (the graph level's
  binding, graphperf.capture.onnx_capture), and a graph input dimension left dynamic is a `UsageError`
  naming it and the ``--dim`` that binds it.

The torch -> linalg lowering runs torch-mlir's conversion passes without the final backend
contract check: an op torch-mlir cannot lower stays a ``torch.*`` op in the module and is listed
in `Lowered.unlowered` (op name and graph node), so the caller can cost that part with graph-level
rules. `keep_ops` names ATen ops to leave unlowered on purpose (torch-mlir's backend-legal-ops).

Weights: torch-mlir imports parameters as constants (``dense_resource``), so the model's weights
must hold real values; `lower_exported` refuses meta tensors with a `UsageError`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from ..errors import AnalysisError, UsageError

__all__ = ["Lowered", "lower_exported", "lower_onnx", "origin_of", "require_torch_mlir", "parsing_context", "STAGES",
           "LOC_PREFIX"]

STAGES = ("torch", "linalg")
LOC_PREFIX = "gp:"
_LOC = re.compile(r'"gp:([^"]+)"')
_NAME_LOC = re.compile(r'"([^"]+)"(?!:\d)')  # a name location, not "file":line:col

# torch-mlir's torch-backend-to-linalg-on-tensors-backend-pipeline, less the contract check
# (torch-verify-linalg-on-tensors-backend-contract) that rejects a module with any torch op left.
_TO_LINALG = ("builtin.module(func.func(convert-torch-to-tmtensor, convert-torch-to-linalg, "
              "convert-torch-to-scf, convert-torch-to-arith, convert-torch-to-tensor), canonicalize, cse)")
_TO_LINALG_FULL = ("builtin.module(torch-backend-to-linalg-on-tensors-backend-pipeline"
                   "{allow-non-finites=true})")


# ATen ops kept out of the FX decomposition table, for torch-mlir to lower itself:
# - addmm, baddbmm: their PyTorch decompositions compute in fp32 (`pw_cast_for_opmath` upcasts bf16/fp16
#   operands), which would turn a bf16 linear layer into an fp32 matmul; torch-mlir lowers them in the
#   operands' dtype.
# - scaled_dot_product_attention: PyTorch's math decomposition scales q and k (k expanded to the query
#   heads) and adds `_safe_softmax` checks, work no attention kernel does. torch-mlir lowers it itself:
#   plain attention to linalg (scores scaled once, softmax, two batch matmuls: exactly the graph-level
#   rule's count), causal or grouped-query attention to `tm_tensor.attention`, its fused attention op,
#   which is not linalg and is costed by the graph-level rule (named in the report's warnings).
_KEEP = ("addmm", "baddbmm", "scaled_dot_product_attention")


@dataclass
class Lowered:
    """An MLIR module at `stage` ("torch" or "linalg") and the ops that did not lower."""

    module: Any  # torch_mlir.ir.Module
    context: Any  # torch_mlir.ir.Context
    stage: str
    frontend: str
    unlowered: list[tuple[str, str]] = field(default_factory=list)  # (op name, graph node)
    seconds: dict[str, float] = field(default_factory=dict)


def origin_of(location: Any) -> str:
    """The graph node a location names: ``loc("gp:<node>")`` (torch.export, possibly fused or nested)
    or the ONNX node name the ONNX importer wrote; "" if none."""
    text = str(location)
    m = _LOC.search(text) or _NAME_LOC.search(text)
    return m.group(1) if m else ""


def require_torch_mlir() -> None:
    """UsageError with the install line when torch-mlir is missing (it is the optional extra `mlir`)."""
    try:
        import torch_mlir  # noqa: F401
    except ImportError:
        raise UsageError("the MLIR level needs torch-mlir, which is not installed: "
                         "pip install -c constraints.txt 'graphperf[mlir]' (or use --level graph)") from None


def parsing_context():
    """A `torch_mlir.ir.Context` that parses what `graphperf mlir` writes: the torch dialect registered and
    torch-mlir's TMTensor dialect loaded (its Python bindings do not register it; running the pass that
    produces TMTensor ops on an empty module loads it), so `tm_tensor.attention` / `tm_tensor.sort` parse."""
    require_torch_mlir()
    from torch_mlir import ir, passmanager
    from torch_mlir.dialects import torch as torch_d

    ctx = ir.Context()
    torch_d.register_dialect(ctx)
    with ctx:
        passmanager.PassManager.parse("builtin.module(func.func(convert-torch-to-tmtensor))").run(
            ir.Module.parse("module {}").operation)
    return ctx


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        line = line.strip()
        if line and "failed with the following diagnostics" not in line:
            return line
    return type(exc).__name__


def _run(module, pipeline: str, what: str) -> None:
    from torch_mlir.passmanager import PassManager

    with module.context:
        try:
            PassManager.parse(pipeline).run(module.operation)
        except Exception as exc:  # MLIR raises a plain MLIRError with the diagnostics
            raise AnalysisError(f"torch-mlir {what} failed: {_first_line(exc)}") from None


def _literal_hooks():
    """FxImporter hooks that import weight tensors from their raw bytes.

    torch-mlir's default path goes through ``tensor.tolist()`` (about 40 s for resnet50's 25M
    parameters); the bytes are the same, taken from the tensor's storage. One-element tensors
    (splat attributes) and tensors that are not plain CPU tensors keep the default path.
    """
    import torch
    from torch_mlir.extras.fx_importer import FxImporterHooks, create_mlir_tensor_type
    from torch_mlir.ir import DenseResourceElementsAttr, Operation

    same_size = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}

    class _RawBytes(FxImporterHooks):
        def resolve_literal(self, gni, literal, info):
            if (not isinstance(literal, torch.Tensor) or literal.numel() <= 1 or literal.device.type != "cpu"
                    or literal.element_size() not in same_size or literal.is_complex()
                    or type(literal) not in (torch.Tensor, torch.nn.Parameter)):
                return None
            data = literal.detach().contiguous().view(same_size[literal.element_size()]).numpy()
            name = f"torch_tensor_{'_'.join(map(str, literal.shape))}_{literal.dtype}"
            attr = DenseResourceElementsAttr.get_from_buffer(data, name, create_mlir_tensor_type(literal))
            vtype = gni._cc.tensor_to_vtensor_type(literal)
            return Operation.create(name="torch.vtensor.literal", results=[vtype], attributes={"value": attr}).result

    return _RawBytes()


class _Importer:
    """An FxImporter whose op locations name the torch.export node (see module docstring)."""

    def __init__(self, context, originals: set[str]):
        from torch_mlir import ir
        from torch_mlir.extras.fx_importer import ContextCache, FxImporter

        def origin(node) -> str:
            queue = list(node.meta.get("from_node") or ())
            while queue:
                src = queue.pop(0)
                if src.name in originals:
                    return src.name
                queue.extend(src.from_node)
            return node.name

        class _NamedLocations(ContextCache):
            def get_node_location(self, node):
                return ir.Location.name(LOC_PREFIX + origin(node), context=self._c)

        self.importer = FxImporter(context=context, hooks=_literal_hooks())
        self.importer._cc = _NamedLocations(context, py_attr_tracker=self.importer._py_attr_tracker)


def _unlowered(module) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for func in module.operation.regions[0].blocks[0].operations:
        for block in func.regions[0].blocks if func.regions else ():
            for op in block.operations:
                name = op.operation.name
                if name.startswith("torch.") and not name.startswith("torch_c."):
                    if name in ("torch.constant.int", "torch.constant.float", "torch.constant.bool",
                                "torch.constant.none", "torch.constant.str", "torch.prim.ListConstruct"):
                        continue
                    out.append((name, origin_of(op.location)))
    return out


def _to_linalg(lowered: Lowered) -> None:
    """torch-mlir's full linalg pipeline; where it fails, the conversions alone, leaving torch ops."""
    import time

    t0 = time.perf_counter()
    torch_stage = lowered.module.operation.clone()  # the pipeline mutates the module before it fails
    try:
        _run(lowered.module, _TO_LINALG_FULL, "torch -> linalg lowering")
    except AnalysisError:
        lowered.module = torch_stage  # a builtin.module op: .operation, .context and the body as a Module's
        _run(lowered.module, _TO_LINALG, "torch -> linalg lowering")
        lowered.unlowered = _unlowered(lowered.module)
        if not lowered.unlowered:
            raise
    lowered.stage = "linalg"
    lowered.seconds["to_linalg_s"] = time.perf_counter() - t0


def _check_materialised(ep) -> None:
    import torch

    for name, t in list(ep.state_dict.items()) + list(ep.constants.items()):
        if isinstance(t, torch.Tensor) and t.device.type == "meta":
            raise UsageError(f"{name}: the MLIR level imports weights as constants, and this model's weights are on "
                             "the meta device; use a small config (--config tiny) or a model with real weights")


def lower_exported(ep, *, stage: str = "linalg", keep_ops: Iterable[str] = ()) -> Lowered:
    """Lower a torch.export `ExportedProgram` to `stage`; see the module docstring."""
    import time

    require_torch_mlir()
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_d
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    if stage not in STAGES:
        raise UsageError(f"--stage {stage!r}: choose one of {', '.join(STAGES)}")
    _check_materialised(ep)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    originals = {n.name for n in ep.graph.nodes}
    table = {op: fn for op, fn in get_decomposition_table().items() if str(op).split(".")[1] not in _KEEP}
    try:
        with warnings.catch_warnings():  # torch's own deepcopy of a pytree spec warns (LeafSpec deprecation)
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
            ep = ep.run_decompositions(table)
    except Exception as exc:
        raise AnalysisError(f"torch-mlir decompositions failed: {_first_line(exc)}") from None
    context = ir.Context()
    torch_d.register_dialect(context)
    imp = _Importer(context, originals).importer
    try:
        imp.import_program(ep, func_name="main")
    except Exception as exc:
        raise AnalysisError(f"torch-mlir FX import failed: {_first_line(exc)}") from None
    module = imp.module
    seconds["import_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    legal = ",".join(keep_ops)
    options = f"backend-legal-ops={legal} extra-library=" if legal else "extra-library="
    _run(module, "builtin.module(func.func(torch-match-quantized-custom-ops), "
         f"torchdynamo-export-to-torch-backend-pipeline{{{options}}})", "torch backend lowering")
    seconds["to_torch_s"] = time.perf_counter() - t0
    lowered = Lowered(module, context, "torch", "torch.export", seconds=seconds)
    if stage == "linalg":
        _to_linalg(lowered)
    return lowered


def _bind_onnx_dims(path: str, proto, dims: Mapping[str, int]) -> None:
    """Write `dims` over the named dynamic dimensions of `proto` (inputs, value_info, outputs), in place, as the
    graph level binds them; a graph input dimension left dynamic is a one-line `UsageError`."""
    from ..capture.onnx_capture import _bind

    g = proto.graph
    weights = {t.name for t in g.initializer} | {s.values.name for s in g.sparse_initializer}
    unbound: dict[str, list[str]] = {}
    for vi in g.input:
        if vi.name in weights:
            continue
        _bind(vi, dims)
        tt = vi.type.tensor_type
        for axis, d in enumerate(tt.shape.dim if vi.type.HasField("tensor_type") else ()):
            if not d.HasField("dim_value"):
                unbound.setdefault(d.dim_param or "?", []).append(f"input '{vi.name}' dim {axis}")
    if unbound:
        parts = "; ".join(f"{name} ({', '.join(where)})" for name, where in unbound.items())
        todo = " ".join(f"--dim {name}=N" for name in unbound if name != "?") or "--dim NAME=N"
        raise UsageError(f"{path}: unbound dynamic dimensions {parts}: torch-mlir needs static shapes; "
                         f"bind them with {todo}")
    for vi in (*g.value_info, *g.output):
        _bind(vi, dims, exprs=True)


def lower_onnx(path: str, *, stage: str = "linalg", dims: Optional[Mapping[str, int]] = None) -> Lowered:
    """Lower an ONNX file (weights inside it or beside it) to `stage`, its dynamic dimensions bound from `dims`
    (names the graph level validated: ``capture_onnx(path, dims)`` refuses unknown ones)."""
    import time

    import onnx

    require_torch_mlir()
    from torch_mlir import ir
    from torch_mlir.extras import onnx_importer

    if stage not in STAGES:
        raise UsageError(f"--stage {stage!r}: choose one of {', '.join(STAGES)}")
    t0 = time.perf_counter()
    try:
        proto = onnx.load(path)
    except Exception as exc:
        raise UsageError(f"{path}: cannot load the ONNX model for torch-mlir: {_first_line(exc)}") from None
    _bind_onnx_dims(path, proto, dims or {})
    try:
        proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as exc:
        raise UsageError(f"{path}: cannot load the ONNX model for torch-mlir: {_first_line(exc)}") from None
    context = ir.Context()
    from torch_mlir.dialects import torch as torch_d

    torch_d.register_dialect(context)
    module = ir.Module.create(ir.Location.unknown(context))
    try:
        info = onnx_importer.ModelInfo(proto, config=onnx_importer.Config())
        imp = onnx_importer.NodeImporter.define_function(info.main_graph, module.operation)
        imp.import_all()
    except Exception as exc:
        raise AnalysisError(f"{path}: torch-mlir ONNX import failed: {_first_line(exc)}") from None
    seconds = {"import_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    _run(module, "builtin.module(torch-onnx-to-torch-backend-pipeline)", "ONNX -> torch lowering")
    seconds["to_torch_s"] = time.perf_counter() - t0
    lowered = Lowered(module, context, "torch", "onnx", seconds=seconds)
    if stage == "linalg":
        _to_linalg(lowered)
    return lowered
