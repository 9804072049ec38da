"""ONNX frontend: an ``.onnx`` file or an ``onnx.ModelProto`` -> `graphperf.ir.Graph`.

Guarantees:
- Weight bytes are never read. The file is loaded with ``load_external_data=False``; of the tensors
  stored outside it, only small ones (at most `SMALL_NUMEL` elements: shapes, axes, exponents) are
  read, as a slice of their data file when it lies beside the model. A model whose data file is
  missing, truncated or huge captures the same. Nothing in the file is executed.
- Every node output has a static shape: dynamic dimensions are bound from `dims` on the graph
  inputs before ``onnx.shape_inference`` runs (strict, with data propagation); a dimension that
  stays unknown is a `UsageError` naming it, where it appears and how to bind it.
- Ops map to canonical ops through `onnx_ops`; an op with no mapping is kept with
  ``OpId("onnx", "<domain>::<op_type>")`` and reported as unknown by the count layer.
- Graph inputs are ``input`` values; initializers (also those listed as inputs) and the outputs of
  Constant nodes are ``weight`` values (Constant nodes do no work and become no node); node
  outputs are ``activation`` values. Nodes whose outputs are computable at capture time from
  constants and static shapes (Shape, shape arithmetic, a scalar CastLike; at most `FOLD_NUMEL`
  elements) are folded the way runtimes fold them at load: their outputs become ``weight`` values
  and `Graph.meta["folded_nodes"]` counts them by op type.
- Shapes written in the file are checked before anything reads them: a negative dimension, a size above
  `MAX_DIM` per dimension or `MAX_NUMEL` elements (graph inputs, initializers, sparse initializers, Constant
  values, value_info, outputs), a zero-size graph input, or inline data that contradicts its declared shape
  is a `UsageError` naming the tensor.
- Every failure the user can act on is a `UsageError` with one line: what, where, what to do.
"""

from __future__ import annotations

import ast
import math
import operator
import os
from typing import Any, Mapping, Optional, Union

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ..errors import UsageError
from ..ir import Graph, Node, OpId, TensorType, Value
from ..ops import canonical
from . import onnx_ops
from .files import require_file
from .onnx_ops import DTYPES, KeepUnknown, OnnxNode, UnmappableNode, module_path
from .onnx_shapes import MAX_DIM, MAX_NUMEL, contrib_shapes, data_problem, declared_shape_problem, is_static

__all__ = ["capture_onnx", "module_path", "SMALL_NUMEL", "FOLD_NUMEL", "MAX_DIM", "MAX_NUMEL"]

SMALL_NUMEL = 64  # constants this small are read (shapes, axes, pads, exponents); larger ones never
FOLD_NUMEL = 4096  # values computed from constants at capture time (see _fold) are at most this big
_SMALL_BYTES = SMALL_NUMEL * 16

_READABLE_EXTERNAL = {  # element types whose external bytes map to numpy one to one
    TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32,
    TensorProto.INT16, TensorProto.INT8, TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32,
    TensorProto.UINT64, TensorProto.BOOL,
}
_STAND_IN_CODES = {getattr(TensorProto, name): name.lower() for name in onnx_ops.DTYPE_STAND_INS}


def capture_onnx(model: Union[str, os.PathLike, onnx.ModelProto], dims: Optional[Mapping[str, int]] = None) -> Graph:
    """Capture an ONNX model as a `Graph` with every shape static.

    Parameters
    ----------
    model : str, path or onnx.ModelProto
        A path to an ``.onnx`` file (external data beside it), or an ``onnx.ModelProto`` (left unchanged).
    dims : Mapping[str, int], optional
        Sizes for the model's named dynamic dimensions, e.g. ``{"batch": 8, "sequence": 512}``.

    Returns
    -------
    Graph
        Every value's shape static and its dtype canonical; ONNX ops mapped onto the canonical set
        (an op with no mapping keeps its ``onnx`` domain and is counted as unknown).

    Raises
    ------
    UsageError
        unreadable or invalid model, unbound or unknown dimension, an output shape that cannot
        be inferred.

    Examples
    --------
    >>> from onnx import TensorProto, helper
    >>> from graphperf import capture_onnx
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    >>> model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]))
    >>> g = capture_onnx(model, dims={"batch": 4})
    >>> [str(n.op) for n in g], str(g.values["y"].type)
    (['relu'], 'float32[4,8]')

    A file works the same way: ``capture_onnx("model.onnx", dims={"batch": 1, "sequence": 128})``.
    """
    src, proto, base_dir = _load(model)
    return _Capture(src, proto, base_dir).run(dict(dims or {}))


# --- loading ---------------------------------------------------------------------------------------

def _load(model: Any) -> tuple[str, onnx.ModelProto, Optional[str]]:
    if isinstance(model, onnx.ModelProto):
        src = f"ONNX model '{model.graph.name or 'unnamed'}'"
        _check_plausible(src, model)
        return src, model, None
    if not isinstance(model, (str, os.PathLike)):
        raise UsageError(f"capture_onnx: expected a path or an onnx.ModelProto, got {type(model).__name__}")
    path = require_file(model, "an .onnx file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise UsageError(f"{path}: cannot read the file ({e.strerror}): check its permissions") from None
    if size == 0:
        raise UsageError(f"{path}: empty file: re-export or re-download the model")
    if head == b"PK\x03\x04":
        raise UsageError(f"{path}: is a zip archive, not an ONNX model (a .pt2 file is a torch.export "
                         "archive): pass the .onnx file")
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends; the message varies by backend
        raise UsageError(f"{path}: not a readable ONNX protobuf ({_one_line(e) or type(e).__name__}): "
                         "the file is truncated or is not an ONNX model") from None
    _check_plausible(path, proto)
    return path, proto, os.path.dirname(os.path.abspath(path))


def _check_plausible(src: str, proto: onnx.ModelProto) -> None:
    if not proto.HasField("graph") or proto.ir_version <= 0:
        raise UsageError(f"{src}: not an ONNX model (no graph or IR version): pass an .onnx file "
                         "written by onnx.save or an exporter")
    if not proto.opset_import:
        raise UsageError(f"{src}: invalid ONNX model: no opset_import (the file may be truncated): "
                         "re-export the model")


def _one_line(e: BaseException) -> str:
    return "; ".join(line.strip() for line in str(e).splitlines() if line.strip())


def _dims_of(vi: onnx.ValueInfoProto) -> Optional[list[Union[int, str, None]]]:
    """Dims of a tensor value_info: int, dim_param name, or None for unknown; None if no shape."""
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]


def _bind(vi: onnx.ValueInfoProto, bound: Mapping[str, int], exprs: bool = False) -> None:
    """Replace bound dim_params by their sizes; with `exprs`, also arithmetic of bound names."""
    if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                value = bound.get(d.dim_param)
                if value is None and exprs:
                    value = _dim_expr(d.dim_param, bound)
                if value is not None:
                    d.dim_value = value


_EXPR_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
             ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def _dim_expr(text: str, bound: Mapping[str, int]) -> Optional[int]:
    """The value of a dim_param like "batch*sequence" or "s0 + 1" (exporters write these in
    value_info) over bound names, or None. Only names, integers and + - * // % are evaluated."""
    if len(text) > 200:
        return None
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Name):
            return bound[node.id]
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _EXPR_OPS:
            return _EXPR_OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(text)

    try:
        value = ev(tree)
    except (KeyError, ValueError, ZeroDivisionError):
        return None
    return value if 0 <= value <= MAX_DIM else None


class _N:
    """A node's fields read once from its proto (protobuf field access is slow in bulk)."""

    __slots__ = ("proto", "op_type", "domain", "name", "inputs", "outputs", "is_constant")

    def __init__(self, proto: onnx.NodeProto):
        self.proto = proto
        self.op_type, self.name = proto.op_type, proto.name
        self.domain = "" if proto.domain == "ai.onnx" else proto.domain
        self.inputs, self.outputs = tuple(proto.input), tuple(proto.output)
        self.is_constant = self.op_type == "Constant" and not self.domain


class _Capture:
    """One capture: indexes the proto once, binds dims, infers shapes, builds the Graph."""

    def __init__(self, src: str, proto: onnx.ModelProto, base_dir: Optional[str]):
        self.src, self.proto, self.base_dir = src, proto, base_dir
        self.opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in proto.opset_import}
        self.weights: dict[str, tuple[Optional[TensorProto], tuple[int, ...], int]] = {}
        self.unreadable: set[str] = set()  # small external tensors whose bytes are not available
        self._consts: dict[str, Optional[np.ndarray]] = {}
        self._types: dict[str, Optional[TensorType]] = {}
        self._by_proto: dict[bytes, Optional[TensorType]] = {}
        self._folded: dict[str, np.ndarray] = {}  # small values computed from constants (see _fold)
        self.inferred: dict[str, onnx.TypeProto] = {}
        self.stand_ins: dict[str, str] = {}

    def fail(self, what: str) -> UsageError:
        return UsageError(f"{self.src}: {what}")

    # -- pipeline --

    def run(self, dims: dict[str, int]) -> Graph:
        g = self.proto.graph
        self.nodes = [_N(n) for n in self._inline(g)]
        self._has_metadata = any(len(n.proto.metadata_props) or n.proto.doc_string for n in self.nodes)
        self._index(g)
        bound = self._bind_dims(g, dims)
        strict_error = self._infer(g, bound)
        for _ in range(8):  # fold small constant subgraphs; infer again while that resolves shapes
            if not self._fold() or not self._unresolved():
                break
            strict_error = self._infer(g, bound)
        self._check_bound(bound)
        graph = self._build(g, strict_error)
        graph.meta.update(frontend="onnx", source=self.src, dims=bound, ir_version=self.proto.ir_version,
                          opset_imports=dict(sorted(self.opsets.items())),
                          producer=" ".join(p for p in (self.proto.producer_name, self.proto.producer_version) if p))
        if self.stand_ins:
            graph.meta["dtype_stand_ins"] = dict(sorted(self.stand_ins.items()))
        if strict_error:
            graph.meta["shape_inference_warning"] = strict_error
        if self.folded_ops:
            graph.meta["folded_nodes"] = dict(sorted(self.folded_ops.items()))
        return graph

    def _inline(self, g: onnx.GraphProto) -> list[onnx.NodeProto]:
        """The top-level nodes, with calls of model-local functions inlined (their ops then map)."""
        if not self.proto.functions:
            return list(g.node)
        shell = onnx.ModelProto(ir_version=self.proto.ir_version)
        shell.opset_import.extend(self.proto.opset_import)
        shell.functions.extend(self.proto.functions)
        shell.graph.node.extend(g.node)
        try:
            from onnx import inliner

            return list(inliner.inline_local_functions(shell).graph.node)
        except Exception as e:
            raise self.fail(f"invalid model-local function ({_one_line(e)}): re-export the model") from None

    def _index(self, g: onnx.GraphProto) -> None:
        """Weights (initializers, Constants) and the structural checks ONNX requires (SSA, order)."""
        for t in g.initializer:
            self._add_weight(t.name, t, tuple(t.dims), t.data_type, "initializer")
        for s in g.sparse_initializer:
            self._add_weight(s.values.name, None, tuple(s.dims), s.values.data_type, "sparse initializer")
        self.graph_inputs = [vi for vi in g.input if vi.name not in self.weights]
        for what, infos in (("input", self.graph_inputs), ("value_info", g.value_info), ("output", g.output)):
            for vi in infos:
                dims = _dims_of(vi)
                if dims:
                    self._check_declared(what, vi.name, dims, empty_ok=what != "input")
        defined = set(self.weights)
        for vi in self.graph_inputs:
            if vi.name in defined:
                raise self.fail(f"invalid ONNX model: input '{vi.name}' is declared twice: re-export the model")
            defined.add(vi.name)
        for i, n in enumerate(self.nodes):
            if n.is_constant:
                try:
                    t, shape, dtype = onnx_ops.constant_tensor(n.proto)
                except ValueError as e:
                    raise self.fail(f"invalid ONNX model: Constant node '{n.name or i}': {e}: "
                                    "re-export the model") from None
                self._add_weight(n.outputs[0], t, shape, dtype, "value")
                defined.add(n.outputs[0])
                continue
            for x in n.inputs:
                if x and x not in defined:
                    later = any(x in m.outputs for m in self.nodes[i + 1:])
                    why = "which a later node defines (nodes are not in topological order)" if later else \
                        "which no input, initializer or node defines"
                    raise self.fail(f"invalid ONNX model: node '{n.name or i}' ({n.op_type}) reads '{x}' {why}: "
                                    "re-export the model")
            for o in n.outputs:
                if o:
                    if o in defined:
                        raise self.fail(f"invalid ONNX model: '{o}' is defined twice (node '{n.name or i}'): "
                                        "re-export the model")
                    defined.add(o)
        for o in g.output:
            if o.name not in defined:
                raise self.fail(f"invalid ONNX model: graph output '{o.name}' is never computed: re-export the model")
        if any(not n.domain for n in self.nodes) and "" not in self.opsets:
            raise self.fail("invalid ONNX model: no opset_import for the default ONNX domain: re-export the model")

    def _add_weight(self, name: str, t: Optional[TensorProto], shape: tuple[int, ...], dtype: int, what: str) -> None:
        if not name:
            raise self.fail(f"invalid ONNX model: an {what} has no name: re-export the model")
        if name in self.weights:
            raise self.fail(f"invalid ONNX model: '{name}' is defined twice: re-export the model")
        self._check_declared(what, name, shape)
        problem = None if t is None else data_problem(what, name, t, shape)
        if problem:
            raise self.fail(problem)
        self.weights[name] = (t, shape, dtype)

    def _check_declared(self, what: str, name: str, dims: Any, empty_ok: bool = True) -> None:
        problem = declared_shape_problem(what, name, dims, empty_ok)
        if problem:
            raise self.fail(problem)

    # -- dims --

    def _bind_dims(self, g: onnx.GraphProto, dims: dict[str, int]) -> dict[str, int]:
        where: dict[str, list[str]] = {}
        unnamed: list[str] = []
        for vi in self.graph_inputs:
            shape = _dims_of(vi)
            if shape is None:
                if vi.type.HasField("tensor_type"):
                    unnamed.append(f"input '{vi.name}' has no shape")
                continue
            for axis, d in enumerate(shape):
                if isinstance(d, str):
                    where.setdefault(d, []).append(f"input '{vi.name}' dim {axis}")
                elif d is None:
                    unnamed.append(f"input '{vi.name}' dim {axis} is dynamic with no name")
        others = {d for vi in (*g.value_info, *g.output) for d in (_dims_of(vi) or ()) if isinstance(d, str)}
        self.bindable = set(where) | {d for d in others if d.isidentifier()}
        for key, value in dims.items():
            if key not in where and key not in others:
                known = ", ".join(where) if where else "none (all its input shapes are static)"
                raise self.fail(f"dimension '{key}' is not in the model; its dynamic dimensions are: {known}")
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 < value <= MAX_DIM:
                raise self.fail(f"dimension {key}={value!r} must be an integer from 1 to 2**31")
        missing = [d for d in where if d not in dims]
        if missing or unnamed:
            parts = [f"{d} ({', '.join(where[d])})" for d in missing]
            msg = f"unbound dynamic dimensions {', '.join(parts)}" if parts else ""
            todo = "bind them with " + " ".join(f"--dim {d}=N" for d in missing) if missing else ""
            if unnamed:
                msg += ("; " if msg else "") + "; ".join(unnamed)
                todo += (" and " if todo else "") + \
                    "give the unnamed ones a name or a size (python -m onnxruntime.tools.make_dynamic_shape_fixed)"
            raise self.fail(f"{msg}: {todo}")
        return {k: int(v) for k, v in dims.items()}

    # -- small constants (never weights) --

    def const(self, name: str) -> Optional[np.ndarray]:
        if name in self._folded:
            return self._folded[name]
        if name in self._consts:
            return self._consts[name]
        value = None
        t = self._small_tensor(name)
        if t is not None and t.data_type != TensorProto.STRING:
            try:
                value = numpy_helper.to_array(t)
            except Exception:
                value = None
        self._consts[name] = value
        return value

    def _small_tensor(self, name: str) -> Optional[TensorProto]:
        """The full TensorProto of a small weight, reading external bytes if needed; else None."""
        entry = self.weights.get(name)
        if entry is None or entry[0] is None or math.prod(entry[1]) > SMALL_NUMEL:
            return None
        t = entry[0]
        if t.data_location != TensorProto.EXTERNAL:
            return t
        data = self._read_external(t)
        if data is None:
            self.unreadable.add(name)
            return None
        out = TensorProto(name=t.name, data_type=t.data_type, dims=t.dims)
        out.raw_data = data
        return out

    def _read_external(self, t: TensorProto) -> Optional[bytes]:
        if self.base_dir is None or t.data_type not in _READABLE_EXTERNAL:
            return None
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        if not location or os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
            return None  # never follow a path out of the model's folder
        try:
            nbytes = math.prod(t.dims) * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
            offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
            if length != nbytes or length > _SMALL_BYTES:
                return None
            with open(os.path.join(self.base_dir, location), "rb") as f:
                f.seek(offset)
                data = f.read(length)
        except (OSError, ValueError, TypeError):
            return None
        return data if len(data) == length else None

    # -- shape inference --

    def _infer(self, g: onnx.GraphProto, bound: Mapping[str, int]) -> str:
        """Run onnx shape inference on a weightless copy; returns the strict-mode error or ""."""
        sk = onnx.ModelProto(ir_version=self.proto.ir_version)
        sk.opset_import.extend(self.proto.opset_import)
        sg = sk.graph
        sg.name = g.name
        for vi in self.graph_inputs:
            sg.input.add().CopyFrom(vi)
            _bind(sg.input[-1], bound)
        for name, (t, shape, dtype) in self.weights.items():
            small = self._small_tensor(name)
            if small is not None:
                sg.initializer.append(small)
                sg.initializer[-1].name = name  # a Constant's tensor may be unnamed
            else:  # its values are not needed (or not available): give inference its type only
                sg.input.append(onnx.helper.make_tensor_value_info(name, dtype, shape))
        for name, value in self._folded.items():
            sg.initializer.append(numpy_helper.from_array(value, name))
        keep = [n for n in self.nodes if not n.is_constant and not (n.outputs and n.outputs[0] in self._folded)]
        sg.node.extend(n.proto for n in keep)  # folded nodes are replaced by their values
        for i, n in enumerate(keep):
            if (n.domain, n.op_type) in onnx_ops.SAME_SHAPE_AS_INPUT and sum(map(bool, n.outputs)) == 1 \
                    and n.outputs[0] and n.inputs and n.inputs[0]:
                # onnx has no shape inference for it: infer through a stand-in with the same output type
                sg.node[i].CopyFrom(onnx.helper.make_node("Identity", [n.inputs[0]], [n.outputs[0]], name=n.name))
        if "" not in self.opsets:
            sk.opset_import.append(onnx.helper.make_opsetid("", 1))
        if self._has_metadata:  # exporters' stack traces: inference does not need them
            for p in sg.node:
                del p.metadata_props[:]
                p.doc_string = ""
        for vi in g.value_info:
            if vi.name not in self.weights:
                sg.value_info.add().CopyFrom(vi)
                _bind(sg.value_info[-1], bound, exprs=True)
        for vi in g.output:
            sg.output.add().CopyFrom(vi)
            _bind(sg.output[-1], bound, exprs=True)
        strict_error = ""
        try:
            inferred = onnx.shape_inference.infer_shapes(sk, strict_mode=True, data_prop=True)
        except Exception as e:  # InferenceError, or a checker error on a malformed proto
            strict_error = _one_line(e)
            try:
                inferred = onnx.shape_inference.infer_shapes(sk, strict_mode=False, data_prop=True)
            except Exception as e2:
                raise self.fail(f"shape inference failed ({_one_line(e2)}): check the model and the dims") from None
        ig = inferred.graph
        self.inferred, self._types, self._by_proto = {}, {}, {}
        for vi in (*ig.input, *ig.value_info, *ig.output):  # a graph output may be declared untyped
            if vi.name not in self.inferred or vi.type.tensor_type.HasField("shape"):
                self.inferred[vi.name] = vi.type
        self._contrib_shapes(sk)
        return strict_error

    def _contrib_shapes(self, sk: onnx.ModelProto) -> None:
        """Contrib-op outputs onnx left without a static shape take onnxruntime's (`onnx_shapes.contrib_shapes`)."""
        if any(n.domain and not n.is_constant and any(o and not is_static(self.inferred.get(o)) for o in n.outputs)
               for n in self.nodes):
            for name, tp in contrib_shapes(sk).items():
                if not is_static(self.inferred.get(name)):
                    self.inferred[name] = tp

    # -- folding small constant subgraphs --

    def _fold(self) -> bool:
        """Compute the outputs of nodes whose inputs are all small known values (and Shape/Size of
        statically shaped values); returns whether anything new was computed."""
        new, opset = False, self.opsets.get("", 1)
        for n in self.nodes:
            if n.is_constant or n.domain or n.op_type not in onnx_ops.FOLDABLE or not n.outputs \
                    or n.outputs[0] in self._folded:
                continue
            if n.op_type not in ("Shape", "Size", "CastLike") and \
                    any(x and x not in self._folded and x not in self.weights for x in n.inputs):
                continue  # reads a run-time value
            values = onnx_ops.fold(n.proto, opset, self.const, self._shape, self._elem_type, FOLD_NUMEL)
            if values is not None:
                self._folded.update((o, v) for o, v in zip(n.outputs, values) if o)
                new = True
        return new

    def _shape(self, name: str) -> Optional[tuple[int, ...]]:
        t = self.type_of(name)
        return None if t is None else t.shape

    def _elem_type(self, name: str) -> Optional[int]:
        if name in self.weights:
            return self.weights[name][2]
        if name in self._folded:
            return onnx.helper.np_dtype_to_tensor_dtype(self._folded[name].dtype)
        tp = self.inferred.get(name)
        return tp.tensor_type.elem_type if tp is not None and tp.HasField("tensor_type") else None

    def _check_bound(self, bound: Mapping[str, int]) -> None:
        """Named dims left on node outputs that `dims` could bind (value_info of custom ops): one error."""
        where: dict[str, list[str]] = {}
        for i, n in enumerate(self.nodes):
            for o in n.outputs:
                tp = self.inferred.get(o) if o and not n.is_constant and self.type_of(o) is None else None
                if tp is not None and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape"):
                    for axis, d in enumerate(tp.tensor_type.shape.dim):
                        if d.dim_param in self.bindable and d.dim_param not in bound:
                            where.setdefault(d.dim_param, []).append(f"node '{n.name or i}' output '{o}' dim {axis}")
        if where:
            parts = ", ".join(f"{d} ({', '.join(w)})" for d, w in where.items())
            raise self.fail(f"unbound dynamic dimensions {parts}: bind them with "
                            + " ".join(f"--dim {d}=N" for d in where))

    def _unresolved(self) -> bool:
        return any(o and self.type_of(o) is None for n in self.nodes if not n.is_constant for o in n.outputs)

    # -- types --

    def type_of(self, name: str) -> Optional[TensorType]:
        if name in self._types:
            return self._types[name]
        if name in self.weights:
            _, shape, dtype = self.weights[name]
            tt = self._tensor_type(name, list(shape), dtype)
        elif name in self._folded:
            value = self._folded[name]
            tt = self._tensor_type(name, list(value.shape), onnx.helper.np_dtype_to_tensor_dtype(value.dtype))
        else:
            tp = self.inferred.get(name)
            tt = None
            if tp is not None and tp.HasField("tensor_type"):
                key = tp.SerializeToString()  # values share few distinct types: convert each once
                if key in self._by_proto:
                    tt = self._by_proto[key]
                else:
                    t = tp.tensor_type
                    if t.HasField("shape"):
                        shape = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
                        if None not in shape:
                            tt = self._tensor_type(name, shape, t.elem_type)
                    self._by_proto[key] = tt
        self._types[name] = tt
        return tt

    def _tensor_type(self, name: str, shape: list[int], elem_type: int) -> Optional[TensorType]:
        if any(d < 0 for d in shape):
            raise self.fail(f"value '{name}' has shape {shape}, with a negative dimension: check the model's "
                            "shapes and the dims")
        if any(d > MAX_DIM for d in shape) or math.prod(shape) > MAX_NUMEL:
            raise self.fail(f"value '{name}' has shape {shape}: above the limit of 2**31 per dimension and "
                            "2**40 elements: check the dims")
        dtype = DTYPES.get(elem_type)
        if dtype is None:
            return None
        if elem_type in _STAND_IN_CODES:
            self.stand_ins[_STAND_IN_CODES[elem_type]] = dtype
        return TensorType(tuple(shape), dtype)

    def _check_outputs(self, n: "_N", name: str, source_op: str, strict_error: str) -> None:
        """Every tensor output of `n` must have a static shape; else one UsageError naming why."""
        for o in n.outputs:
            if not o or self.type_of(o) is not None:
                continue
            tp = self.inferred.get(o)
            if tp is not None and tp.WhichOneof("value") not in (None, "tensor_type"):
                continue  # sequences, maps, optionals: no tensor shape to give
            if tp is not None and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape") \
                    and DTYPES.get(tp.tensor_type.elem_type, "x") is None:
                continue  # strings and types graphperf has no name for: kept without a TensorType
            dims = [] if tp is None or not tp.tensor_type.HasField("shape") else \
                [d.dim_param if d.HasField("dim_param") else None for d in tp.tensor_type.shape.dim
                 if not d.HasField("dim_value")]
            named = [d for d in dims if d]
            if named:
                problem = f"output '{o}' has dimension {', '.join(map(repr, named))}, which depends on " \
                          "the data or on a dimension no input binds"
            elif tp is None or not tp.tensor_type.HasField("shape"):
                problem = f"output '{o}' has no inferred shape"
            else:
                problem = f"output '{o}' has dimensions of unknown size"
            missing = [x for x in n.inputs if x in self.unreadable]
            if missing:
                problem += f" (its input '{missing[0]}' is in an external data file that could not be read)"
            schema = onnx.defs.has(n.op_type, n.domain)  # no schema: a custom op
            if not schema:
                todo = "add value_info with its output shapes to the model, or replace the op"
            elif missing:
                todo = "keep the external data file beside the model"
            else:
                todo = "export the model with static shapes or check the dims"
            detail = f" (onnx: {strict_error})" if strict_error and schema else ""
            raise self.fail(f"cannot infer the output shape of node '{name}' ({source_op}): {problem}{detail}: "
                            f"graphperf needs static shapes: {todo}")

    # -- building --

    def _temp(self, suffix: str, t: Optional[TensorType]) -> str:
        """A new intermediate value for a decomposition of the node being built."""
        tmp = f"{self._node_name}/{suffix}"
        while tmp in self._values or tmp in self._temps:
            tmp += "_"
        self._temps[tmp] = t
        return tmp

    def _type_or_temp(self, name: str) -> Optional[TensorType]:
        return self._temps[name] if name in self._temps else self.type_of(name)

    def _build(self, g: onnx.GraphProto, strict_error: str) -> Graph:
        values: dict[str, Value] = {}
        self._values, self._temps = values, {}
        for vi in self.graph_inputs:
            values[vi.name] = Value(vi.name, self.type_of(vi.name), "input", None, vi.name)
        for name in self.weights:
            values[name] = Value(name, self.type_of(name), "weight", None, name)
        for name in self._folded:  # computed at capture time from constants, as runtimes fold them
            values[name] = Value(name, self.type_of(name), "weight", None, name)
        nodes: list[Node] = []
        self.folded_ops: dict[str, int] = {}
        used: set[str] = set()
        for index, n in enumerate(self.nodes):
            if n.is_constant:
                continue
            op_type, domain = n.op_type, n.domain
            if n.outputs and n.outputs[0] in self._folded:
                self.folded_ops[op_type] = self.folded_ops.get(op_type, 0) + 1
                continue
            name = base = n.name or f"{op_type}_{index}"
            k = 0
            while name in used:
                k += 1
                name = f"{base}_{k}"
            used.add(name)
            source_op = f"{domain}::{op_type}" if domain else op_type
            outputs = n.outputs
            self._check_outputs(n, name, source_op, strict_error)
            module = onnx_ops.module_of(n.proto)
            attrs = onnx_ops.attr_values(n.proto) if len(n.proto.attribute) else {}
            inputs = tuple(x or None for x in n.inputs)
            parts = None
            fn = onnx_ops.mapper(domain, op_type)
            if fn is not None:
                self._node_name = name
                view = OnnxNode(name, op_type, domain, self.opsets.get(domain, 1), attrs, inputs, outputs,
                                self._type_or_temp, self.const, self._temp)
                try:
                    parts = fn(view)
                except KeepUnknown:
                    parts = None
                except UnmappableNode as e:
                    raise self.fail(f"node '{name}' ({source_op}): {e}: check the model") from None
                except Exception as e:  # a malformed node (a required attribute missing, ...)
                    raise self.fail(f"node '{name}' ({source_op}) is malformed ({type(e).__name__}: "
                                    f"{_one_line(e)}): check the model") from None
            if parts is None:  # no canonical op: kept as it is, reported as unknown
                outs = tuple(o for o in outputs if o)
                nodes.append(Node(name, OpId("onnx", f"{domain or 'ai.onnx'}::{op_type}"), source_op, inputs,
                                  outs, attrs, module))
                for o in outs:
                    values[o] = Value(o, self.type_of(o), "activation", name, o)
                continue
            for part in (parts if isinstance(parts, list) else (parts,)):
                pname = f"{name}/{part.suffix}" if part.suffix else name
                while pname != name and pname in used:
                    pname += "_"
                used.add(pname)
                outs = tuple(o for o in part.outputs if o)
                nodes.append(Node(pname, canonical(part.op), source_op, part.inputs, outs, part.attrs, module))
                for o in outs:
                    values[o] = Value(o, self._type_or_temp(o), "activation", pname, o)
            for o in outputs:
                if o and o not in values:
                    raise AssertionError(f"the onnx_ops mapper of {source_op} dropped output {o!r}")
        try:
            return Graph(g.name or "onnx", nodes, values, outputs=[o.name for o in g.output])
        except ValueError as e:
            raise self.fail(f"invalid ONNX model: {e}: re-export the model") from None
