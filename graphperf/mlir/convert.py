"""Turn a linalg-on-tensors module (graphperf.mlir.lower) into graphperf's `Graph`.

One node per op of the main function, in order. Named linalg ops are generalized on a copy of the
module (``linalg-generalize-named-ops``) so that every structured op exposes its indexing maps,
iterator types and body; the named op's name is kept as the node's `source_op`.

Classification (every op is classified, none is guessed):

- linalg structured ops: canonical `linalg` (attrs: domain, per-point body counts, matrix flag,
  per-input footprints; see graphperf/rules/linalg.py), except the pure data movement the body
  shows: a body that only yields an input is a `transpose` (permuted map: a layout op, counted as a
  view by canonicalization, as at the graph level), an `expand` (broadcast map) or a `copy`;
  ``linalg.fill`` is a `fill` (a memset write), or free (`view`) when every use is the initial
  value of an accumulator (the consuming kernel initialises it in registers).
- tensor.empty: no node (an uninitialised buffer; its value is never read).
- arith.constant of tensor type: a weight value (no node); scalar constants: nothing.
- tensor.expand_shape / collapse_shape / reshape / cast, torch_c casts: `view` (free).
- tensor.extract_slice: `slice`; tensor.insert_slice: `linalg` copying the inserted slice;
  tensor.concat: `concat`; tensor.pad: `pad`.
- anything else that produces a tensor (torch.* ops torch-mlir did not lower, tm_tensor.*):
  a node with ``OpId("mlir", <op name>)`` and ``attrs["fallback"] = True``; graphperf.mlir.analyze
  costs it with the graph-level rules of the graph node it came from.

Bytes: a structured op reads each input's footprint under its indexing map (a broadcast operand
is read once, at its own size), reads an output's initial value only when the body reads it and
it is not a folded fill, and reads tensors its body loads with ``tensor.extract`` once per load
(a gather reads the gathered elements).
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from ..ir import Graph, Node, OpId, TensorType, Value
from ..ops import canonical
from .body import count_body
from .lower import Lowered, origin_of

__all__ = ["to_graph", "MLIR_DTYPES", "tensor_type"]

MLIR_DTYPES = {
    "f64": "float64", "f32": "float32", "f16": "float16", "bf16": "bfloat16", "i64": "int64", "i32": "int32",
    "i16": "int16", "i8": "int8", "ui8": "uint8", "i1": "bool", "f8E4M3FN": "float8_e4m3fn", "f8E5M2": "float8_e5m2",
    "si64": "int64", "si32": "int32", "si8": "int8", "complex<f32>": "complex64",
}
_VTENSOR = re.compile(r"!torch\.vtensor<\[([0-9,\s]*)\],\s*([a-zA-Z0-9<>]+)>")
_VIEWS = ("tensor.expand_shape", "tensor.collapse_shape", "tensor.reshape", "tensor.cast",
          "torch_c.to_builtin_tensor", "torch_c.from_builtin_tensor", "bufferization.to_tensor")
_CANONICAL_TENSOR_OPS = {"tensor.extract_slice": "slice", "tensor.concat": "concat", "tensor.pad": "pad"}
_CONTRACTION_NAMES = ("linalg.matmul", "linalg.batch_matmul", "linalg.matvec", "linalg.vecmat", "linalg.dot",
                      "linalg.batch_matvec", "linalg.batch_reduce_matmul", "linalg.contract", "linalg.conv_",
                      "linalg.depthwise_conv_", "linalg.mmt4d", "linalg.batch_mmt4d")
_MULS = ("arith.mulf", "arith.muli")
_ADDS = ("arith.addf", "arith.addi")


def tensor_type(t: Any) -> Optional[TensorType]:
    """A graphperf TensorType for an MLIR ranked tensor or torch vtensor type; None otherwise."""
    from torch_mlir import ir

    if isinstance(t, ir.RankedTensorType):
        rt = t
        if not rt.has_static_shape:
            raise ValueError(f"dynamic shape {rt}: bind the dimension before lowering")
        dtype = MLIR_DTYPES.get(str(rt.element_type))
        return None if dtype is None else TensorType(tuple(rt.shape), dtype)
    m = _VTENSOR.match(str(t))
    if m:
        dtype = MLIR_DTYPES.get(m.group(2))
        shape = tuple(int(d) for d in m.group(1).replace(" ", "").split(",") if d)
        return None if dtype is None else TensorType(shape, dtype)
    return None


def _main_block(module) -> Any:
    """The body of the module's first func.func (`module`: an ir.Module or a builtin.module op)."""
    for op in module.operation.regions[0].blocks[0].operations:
        if op.operation.name == "func.func":
            return op.regions[0].blocks[0]
    raise ValueError("the MLIR module has no func.func")


def _generalized(lowered: Lowered):
    """(original op, generalized op) pairs for the main function's ops."""
    from torch_mlir.passmanager import PassManager

    copy = lowered.module.operation.clone()  # a builtin.module op; weights stay shared resources
    with lowered.context:
        PassManager.parse("builtin.module(func.func(linalg-generalize-named-ops))").run(copy.operation)
    original = list(_main_block(lowered.module).operations)
    general = list(_main_block(copy).operations)
    if len(original) != len(general):
        raise ValueError("linalg-generalize-named-ops changed the number of ops; cannot pair named ops")
    return list(zip(original, general)), copy


def _footprint(amap, domain: tuple[int, ...], shape: tuple[int, ...]) -> int:
    from torch_mlir import ir

    elems = 1
    for i, expr in enumerate(amap.results):
        if isinstance(expr, ir.AffineDimExpr):
            elems *= domain[expr.position]
        elif isinstance(expr, ir.AffineConstantExpr):
            continue
        else:  # d0 + d3 (convolution windows): the operand's extent along that dimension
            elems *= shape[i]
    return min(elems, math.prod(shape)) if shape else elems


def _domain(maps, shapes, n_loops: int) -> tuple[int, ...]:
    from torch_mlir import ir

    sizes: list[Optional[int]] = [None] * n_loops
    for amap, shape in zip(maps, shapes):
        if shape is None:
            continue
        for i, expr in enumerate(amap.results):
            if isinstance(expr, ir.AffineDimExpr):
                pos = expr.position
                if sizes[pos] is None:
                    sizes[pos] = shape[i]
    if any(s is None for s in sizes):
        raise ValueError(f"loop sizes {sizes} not all determined by the operand shapes")
    return tuple(sizes)  # type: ignore[arg-type]


def _loops(amap) -> tuple[int, ...]:
    """The loops an indexing map reads (d1 + d4 reads loops 1 and 4)."""
    from torch_mlir import ir

    found: set[int] = set()
    stack = list(amap.results)
    while stack:
        e = stack.pop()
        if isinstance(e, ir.AffineDimExpr):
            found.add(e.position)
        elif isinstance(e, ir.AffineBinaryExpr):
            stack += [e.lhs, e.rhs]
    return tuple(sorted(found))


def _is_permutation(amap) -> bool:
    from torch_mlir import ir

    res = list(amap.results)
    return (len(res) == amap.n_dims and all(isinstance(e, ir.AffineDimExpr) for e in res)
            and sorted(e.position for e in res) == list(range(amap.n_dims)))


def _copy_kind(in_map, out_map, src: Optional[TensorType], dst: Optional[TensorType]) -> str:
    """A body that only yields its input: broadcast (`expand`), permutation (`transpose`), `cast` or `copy`."""
    if len(in_map.results) < in_map.n_dims:
        return "expand"
    if any(_is_permutation(m) and _moves(m) for m in (in_map, out_map)):
        return "transpose"
    if src is not None and dst is not None and src.dtype != dst.dtype:
        return "cast"
    return "copy"


def _moves(amap) -> bool:
    return [e.position for e in amap.results] != list(range(amap.n_dims))


class _Builder:
    """Values and nodes of the graph being built; MLIR values of both modules map to value names."""

    def __init__(self):
        self.values: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.names: dict[Any, str] = {}  # MLIR Value (original or generalized copy) -> value name
        self.kinds: dict[str, int] = {}  # classified ops that are not nodes: name -> count

    def define(self, v, name: str, kind: str, producer: Optional[str]) -> None:
        t = tensor_type(v.type)
        self.names[v] = name
        self.values[name] = Value(name, t, kind, producer)

    def use(self, v) -> str:
        name = self.names.get(v)
        if name is None:
            raise ValueError(f"value {v.get_name()} is used before it is defined")
        return name


def _structured_node(b: _Builder, k: int, orig, gen, origin: str, folded_fills: set) -> Node:
    view = gen.opview
    n_in, n_out = len(view.inputs), len(view.outputs)
    operands = list(orig.operands)  # the original op's operands: ins then outs, as in the generic
    ins, outs = operands[:n_in], operands[n_in:n_in + n_out]
    maps = [a.value for a in view.indexing_maps]
    iters = [str(a).split("<")[-1].rstrip(">") for a in view.iterator_types]
    shapes = [None if tensor_type(v.type) is None else tensor_type(v.type).shape for v in ins + outs]
    domain = _domain(maps, shapes, len(iters))
    live = [bool(list(r.uses)) for r in orig.results]
    body = count_body(gen.regions[0].blocks[0], live)
    source = orig.operation.name
    tensor_ins = [i for i, v in enumerate(ins) if shapes[i] is not None]
    name = f"{origin or 'mlir'}#{k}"
    out_names = tuple(f"{name}:{j}" for j in range(len(gen.results)))
    copy_only = body.empty and not body.extracts and len(tensor_ins) == len(ins)
    if source == "linalg.fill" or (not tensor_ins and body.empty and len(ins) == 1):
        op = canonical("view" if orig.results[0] in folded_fills else "fill")
        return Node(name, op, source, (), out_names, {"graph_node": origin})
    if copy_only and len(ins) == 1 and len(outs) == 1 and 0 in body.reads_block_args:
        kind = _copy_kind(maps[0], maps[1], tensor_type(ins[0].type), tensor_type(outs[0].type))
        return Node(name, canonical(kind), source, (b.use(ins[0]),), out_names, {"graph_node": origin})
    inputs: list[str] = []
    reads: list[int] = []
    for i in tensor_ins:
        inputs.append(b.use(ins[i]))
        reads.append(_footprint(maps[i], domain, shapes[i]))
    for j, v in enumerate(outs):
        if len(ins) + j in body.reads_block_args and v not in folded_fills:
            inputs.append(b.use(v))
            reads.append(math.prod(shapes[len(ins) + j]))
    points = math.prod(domain)
    for t in body.extracts:
        inputs.append(b.use(t))
        reads.append(points)
    ops = body.op_counts
    matrix = source.startswith(_CONTRACTION_NAMES) or (
        "reduction" in iters and len(tensor_ins) >= 2 and any(m in ops for m in _MULS)
        and any(a in ops for a in _ADDS) and body.transcendentals == 0 and body.flops == 2)
    attrs = {"domain": domain, "flops_per_point": body.flops, "transcendentals_per_point": body.transcendentals,
             "matrix": bool(matrix), "reads": tuple(reads), "iterator_types": tuple(iters),
             "operand_loops": tuple(_loops(m) for m in maps),
             "graph_node": origin, "body_ops": dict(sorted(ops.items()))}
    if body.unknown:
        attrs["unknown_body"] = tuple(sorted(set(body.unknown)))
    return Node(name, canonical("linalg"), source, tuple(inputs), out_names, attrs)


def _fills_folded(block) -> set:
    """Results of linalg.fill whose every use is the initial value of a structured op's output."""
    out = set()
    for op in block.operations:
        if op.operation.name != "linalg.fill":
            continue
        result = op.results[0]
        uses = list(result.uses)
        ok = bool(uses)
        for use in uses:
            user = use.owner
            if not user.operation.name.startswith("linalg.") or user.operation.name == "linalg.fill":
                ok = False
                break
            n_in = len(user.opview.inputs) if hasattr(user.opview, "inputs") else None
            if n_in is None or use.operand_number < n_in:
                ok = False
                break
        if ok:
            out.add(result)
    return out


def to_graph(lowered: Lowered, name: str = "model") -> Graph:
    """The `Graph` of a lowered module (stage "linalg"); see the module docstring."""
    pairs, copy = _generalized(lowered)
    block = _main_block(lowered.module)
    folded = _fills_folded(block)
    b = _Builder()
    for i, (arg, twin) in enumerate(zip(block.arguments, _main_block(copy).arguments)):
        b.define(arg, f"arg{i}", "input", None)
        b.names[twin] = f"arg{i}"
    outputs: list[str] = []
    for k, (orig, gen) in enumerate(pairs):
        opname = orig.operation.name
        origin = origin_of(orig.location)
        results = list(orig.results)
        if opname == "func.return":
            outputs = [b.use(v) for v in orig.operands]
            continue
        if opname in ("arith.constant", "torch.vtensor.literal"):
            if results and tensor_type(results[0].type) is not None:
                b.define(results[0], f"cst{k}", "weight", None)
                b.names[gen.results[0]] = f"cst{k}"
            b.kinds[opname] = b.kinds.get(opname, 0) + 1
            continue
        if not any(tensor_type(r.type) is not None for r in results):
            b.kinds[opname] = b.kinds.get(opname, 0) + 1  # scalar ops outside bodies: not kernels
            continue
        if opname == "tensor.empty":
            b.define(results[0], f"empty{k}", "activation", None)
            b.names[gen.results[0]] = f"empty{k}"
            b.kinds[opname] = b.kinds.get(opname, 0) + 1
            continue
        node_name = f"{origin or 'mlir'}#{k}"
        tensors = [v for v in orig.operands if tensor_type(v.type) is not None]
        if opname.startswith("linalg.") and hasattr(gen.opview, "indexing_maps"):
            node = _structured_node(b, k, orig, gen, origin, folded)
        elif opname in _VIEWS:
            node = Node(node_name, canonical("view"), opname, (b.use(tensors[0]),), (), {"graph_node": origin})
        elif opname in _CANONICAL_TENSOR_OPS:
            node = Node(node_name, canonical(_CANONICAL_TENSOR_OPS[opname]), opname,
                        tuple(b.use(v) for v in tensors), (), {"graph_node": origin})
        elif opname == "tensor.insert_slice":
            src = tensor_type(orig.operands[0].type)
            node = Node(node_name, canonical("linalg"), opname, (b.use(orig.operands[0]), b.use(orig.operands[1])),
                        (), {"domain": src.shape, "flops_per_point": 0, "transcendentals_per_point": 0,
                             "matrix": False, "reads": (src.numel, 0), "writes": (src.numel,),
                             "graph_node": origin})
        else:
            node = Node(node_name, OpId("mlir", opname), opname, tuple(b.use(v) for v in tensors), (),
                        {"graph_node": origin, "fallback": True})
        out_names = node.outputs or tuple(f"{node_name}:{j}" for j in range(len(results)))
        node.outputs = out_names
        for v, twin, vname in zip(results, gen.results, out_names):
            b.define(v, vname, "activation", node_name)
            b.names[twin] = vname
        b.nodes.append(node)
    used = {n for node in b.nodes for n in node.inputs if n is not None} | set(outputs)
    values = {n: v for n, v in b.values.items() if v.producer is not None or n in used}
    meta = {"frontend": f"torch-mlir ({lowered.frontend})", "mlir_classified_ops": dict(sorted(b.kinds.items())),
            "mlir_stage": lowered.stage}
    return Graph(name, b.nodes, values, outputs, meta)
