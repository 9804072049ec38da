"""Tensor parallelism as a rewrite: the graph one device of a ``tp``-way group runs, with its collectives.

`shard_tensor_parallel(graph, tp)` returns a new `Graph` (the input is never mutated) in which, as Megatron-LM
(Shoeybi et al. 2019) and vLLM split a decoder:

- column-parallel matmuls (`TP_PLAN` "colwise": q/k/v, gate/up, and MoE expert ``w_gate``/``w_up``) hold
  1/tp of the weight's output features; their outputs are split along the last dim;
- row-parallel matmuls ("rowwise": o_proj, down_proj, expert ``w_down``) hold 1/tp of the input features and
  produce a partial sum, followed by an ``all_reduce`` of the activation;
- attention runs 1/tp of the query heads and of the KV heads (the KV cache inputs shrink with them);
- the embedding is vocab-parallel (1/tp of the rows, each device looks up the tokens it holds, then an
  ``all_reduce``); the LM head is vocab-parallel ("vocab_head"), followed by an ``all_gather`` of the logits.

Every other node follows its inputs: an elementwise op, a view, a concatenation or a row kernel on a split
tensor stays split along the same (moved) dim; a node that reads only replicated values (norms, residual adds,
the MoE router) runs in full on every device. A node the pass cannot split along its input's dim (a reduction
over the split dim, a view it cannot follow) gets its split inputs gathered first (an ``all_gather``) and runs
replicated; each such case is listed in `ShardResult.refused` as a `Refusal` (kind ``replicated``) with its reason.

Collective nodes carry ``group_size`` = tp and ``algorithm`` (graphperf/rules/collective.py prices them);
their names end in ``_all_reduce`` / ``_all_gather`` and they keep the module of the node they follow.

Refusals that stop the pass (`UsageError`, one line): tp < 1, or a tp that does not divide a dim the plan
splits (heads, KV heads, features, vocab).

`split_pipeline(graph, pp)` is pipeline parallelism: the decoder layers split into `pp` consecutive stages, each
a `Graph` that receives the activations of the stage before it (a point-to-point send over the link).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import NORM_OPS, POINTWISE_OPS, REDUCTIONS, canonical, op_name

from .result import PassResult, Refusal, RefusalKind, graph_pass

__all__ = ["TP_PLAN", "ShardResult", "shard_tensor_parallel", "collectives_by_layer", "PipelineStage",
           "split_pipeline"]

#: How the pass splits a matmul, by the last name of its module (a Linear) or the end of its weight's name
#: (stacked expert weights): Hugging Face's ``base_model_tp_plan`` spelling.
TP_PLAN = {
    "q_proj": "colwise", "k_proj": "colwise", "v_proj": "colwise", "o_proj": "rowwise",
    "gate_proj": "colwise", "up_proj": "colwise", "down_proj": "rowwise",
    "w_gate": "colwise", "w_up": "colwise", "w_down": "rowwise",
    "embed_tokens": "vocab_embedding", "lm_head": "vocab_head",
}


@dataclass(frozen=True, kw_only=True)
class ShardResult(PassResult):
    """The sharded graph, its degree, the collectives it inserted and the nodes it could not split (`Refusal`s of
    kind ``replicated``: gathered, run replicated); a `PassResult` whose one record is `summary()`, `modified`
    when tp > 1. Build it with `ShardResult.of`."""

    tp: int
    collectives: list[str] = field(default_factory=list)  # inserted node names, graph order

    @classmethod
    def of(cls, graph: Graph, tp: int, collectives: list[str] = (), refused: list[Refusal] = ()) -> "ShardResult":
        collectives, refused = list(collectives), list(refused)
        return cls(graph, tp > 1, [_summary(graph, tp, collectives, refused)], refused, tp=tp, collectives=collectives)

    def summary(self) -> dict:
        """The rewrite record: ``{"rewrite": "tensor_parallel", "tp", "collectives": {op: count}, "refused"}``."""
        return _summary(self.graph, self.tp, self.collectives, self.refused)


def _summary(graph: Graph, tp: int, collectives: list[str], refused: list) -> dict:
    ops: dict[str, int] = {}
    by_name = {n.name: n for n in graph.nodes}
    for name in collectives:
        op = by_name[name].op.name
        ops[op] = ops.get(op, 0) + 1
    return {"rewrite": "tensor_parallel", "tp": tp, "collectives": dict(sorted(ops.items())), "refused": len(refused)}


def collectives_by_layer(graph: Graph) -> dict[str, list[dict]]:
    """layer ("layers.3", or the module of a collective outside the layers) -> its collectives, in graph order:
    op, payload shape and dtype, group size."""
    from graphperf.rules.collective import COLLECTIVE_OPS

    out: dict[str, list[dict]] = {}
    for node in graph.nodes:
        if op_name(node.op) in COLLECTIVE_OPS:
            parts = node.module.split(".")
            layer = ".".join(parts[:2]) if parts[0] == "layers" and len(parts) > 1 else node.module
            t = graph.values[node.inputs[0]].type
            out.setdefault(layer, []).append({"node": node.name, "op": node.op.name, "module": node.module,
                                              "shape": list(t.shape), "dtype": t.dtype,
                                              "group_size": node.attrs["group_size"]})
    return out


def _role(node: Node, weight: Value) -> Optional[str]:
    last = node.module.rsplit(".", 1)[-1]
    for key, role in TP_PLAN.items():
        if last == key or weight.name.endswith(f"_{key}") or weight.name.endswith(f"_{key}_weight"):
            return role
    return None


def _split(t: TensorType, dim: int, tp: int, what: str) -> TensorType:
    size = t.shape[dim]
    if size % tp:
        raise UsageError(f"--tp {tp} does not divide {what} (size {size} in {t}); choose a tp that divides the "
                         "attention heads, KV heads, MLP width and vocabulary")
    shape = list(t.shape)
    shape[dim] = size // tp
    return TensorType(tuple(shape), t.dtype)


def _view_dim(src: tuple, dst: tuple, d: int, source_op: str) -> Optional[int]:
    """The dim of `dst` that carries dim `d` of `src` through a view (reshape, transpose, slice, unsqueeze ...),
    or None when the view does not keep it whole and outermost."""
    perm = len(src) == len(dst) and sorted(src) == sorted(dst) and src != dst
    differing = [k for k in range(len(src)) if perm and src[k] != dst[k]]
    if len(src) == len(dst) and dst[d] == src[d] and d not in differing:
        return d
    if perm and ("transpose" in source_op or "permute" in source_op or source_op.endswith(".t.default")):
        if len(differing) == 2:
            return differing[1] if d == differing[0] else differing[0]
        hits = [k for k in range(len(dst)) if dst[k] == src[d]]
        return hits[0] if len(hits) == 1 else None
    prefix = math.prod(src[:d])
    for j in range(len(dst)):
        if math.prod(dst[:j]) == prefix and dst[j] > 1:
            # the split dim must lead its group: dst[j] holds src[d] (merge) or src[d] holds dst[j] (split)
            if dst[j] % src[d] == 0 or src[d] % dst[j] == 0:
                return j
            return None
        if math.prod(dst[:j]) > prefix:
            return None
    return None


#: Ops whose output keeps an input's split dim unless they reduce, normalise or join along it (`_Sharder.follow`).
_FOLLOWING = frozenset((*POINTWISE_OPS, *REDUCTIONS, *NORM_OPS, "concat", "pointwise", "split", "slice", "copy",
                        "expand", "pad", "fused", "topk", "sort", "rotary", "reshape_copy"))


class _Sharder:
    def __init__(self, graph: Graph, tp: int, algorithm: str):
        self.g, self.tp, self.algorithm = graph, tp, algorithm
        self.dims: dict[str, int] = {}  # value name -> split dim (absent: replicated)
        self.types: dict[str, TensorType] = {}  # value name -> its type on one device (absent: unchanged)
        self.decided: dict[str, Optional[int]] = {}  # graph input / weight -> split dim or None (replicated)
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = {}
        self.collectives: list[str] = []
        self.refused: list[Refusal] = []

    # -- values --------------------------------------------------------------------------------
    def type_of(self, name: str) -> TensorType:
        return self.types.get(name) or self.g.values[name].type

    def orig(self, name: str) -> TensorType:
        return self.g.values[name].type

    def split_leaf(self, name: str, dim: int, what: str) -> None:
        """Split a graph input or weight along `dim` (once; a conflicting second use raises)."""
        value = self.g.values[name]
        dim %= value.type.rank
        if name in self.decided:
            if self.decided[name] != dim:
                raise UsageError(f"tensor parallel: {value.kind} {name} is needed split along dim {dim} and "
                                 f"along {self.decided[name]}")
            return
        self.decided[name] = dim
        self.types[name] = _split(value.type, dim, self.tp, what)
        self.dims[name] = dim

    def is_leaf(self, name: str) -> bool:
        return self.g.values[name].producer is None

    def set_out(self, name: str, dim: Optional[int], what: str) -> None:
        if dim is not None:
            self.dims[name] = dim
            self.types[name] = _split(self.orig(name), dim, self.tp, what)

    def use_replicated(self, name: str) -> None:
        if self.is_leaf(name) and name not in self.decided:
            self.decided[name] = None

    # -- collectives -------------------------------------------------------------------------------
    def collective(self, op: str, src: str, dst: str, module: str, name: str, attrs: dict) -> Node:
        attrs = {"group_size": self.tp, "algorithm": self.algorithm if op == "all_reduce" else "ring", **attrs}
        self.collectives.append(name)
        return Node(name, canonical(op), f"graphperf.shard.{op}", (src,), (dst,), attrs, module)

    def refuse(self, node: Node, reason: str) -> list[Node]:
        """Run `node` replicated: an all_gather of each split input before it."""
        self.refused.append(Refusal("tensor_parallel", RefusalKind.REPLICATED, reason,
                                    {"node": node.name, "op": str(node.op)}))
        out: list[Node] = []
        inputs = []
        for n in node.inputs:
            if n is not None and n in self.dims:
                gathered = f"{n}__gathered"
                if gathered not in self.values:
                    name = f"{node.name}_all_gather_{n}"
                    self.values[gathered] = Value(gathered, self.orig(n), "activation", name)
                    out.append(self.collective("all_gather", n, gathered, node.module, name, {"axis": self.dims[n]}))
                n = gathered
            elif n is not None:
                self.use_replicated(n)
            inputs.append(n)
        out.append(Node(node.name, node.op, node.source_op, tuple(inputs), node.outputs, node.attrs, node.module))
        return out

    # -- nodes ---------------------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.g.nodes:
            self.nodes.extend(self.node(node))
            for out in node.outputs:
                old = self.g.values[out]
                if out not in self.values:
                    self.values[out] = Value(out, self.type_of(out), old.kind, old.producer, old.source_name)
        for name, value in self.g.values.items():
            if value.producer is None:
                self.values[name] = Value(name, self.type_of(name), value.kind, None, value.source_name)

    def node(self, node: Node) -> list[Node]:
        op = op_name(node.op)
        ins = [n for n in node.inputs if n is not None]
        if op in ("matmul", "gather") and len(node.inputs) > 1 and node.inputs[1 if op == "matmul" else 0] is not None:
            weight_name = node.inputs[1 if op == "matmul" else 0]
            weight = self.g.values[weight_name]
            role = _role(node, weight) if weight.kind == "weight" else None
            if role is not None:
                return self.planned(node, op, role, weight_name)
        split = [n for n in ins if n in self.dims]
        if not split:
            for n in ins:
                self.use_replicated(n)
            return [node]
        if op in ("view", "reshape_copy"):
            src = node.inputs[0]
            j = _view_dim(self.orig(src).shape, self.orig(node.outputs[0]).shape, self.dims[src], node.source_op)
            if j is None:
                return self.refuse(node, f"the view {node.source_op} does not keep split dim {self.dims[src]} whole")
            self.set_out(node.outputs[0], j, f"{node.outputs[0]} dim {j}")
            return [node]
        if op == "attention":
            return self.attention(node)
        return self.follow(node, op, split)

    def planned(self, node: Node, op: str, role: str, weight_name: str) -> list[Node]:
        out = node.outputs[0]
        wt = self.orig(weight_name)
        if op == "gather":  # vocab-parallel embedding: each device looks up its rows, then all_reduce
            if role != "vocab_embedding":
                return self.refuse(node, f"a gather from a {role} weight")
            self.split_leaf(weight_name, 0, f"the vocabulary of {weight_name}")
            return self.partial_then_reduce(node, out)
        x = node.inputs[0]
        trans_b = bool(node.attrs.get("trans_b"))
        n_dim = wt.rank - 2 if trans_b else wt.rank - 1
        k_dim = wt.rank - 1 if trans_b else wt.rank - 2
        if role in ("colwise", "vocab_head"):
            if x in self.dims:
                return self.refuse(node, f"column-parallel {node.module} reads an input split along dim {self.dims[x]}")
            self.use_replicated(x)
            self.split_leaf(weight_name, n_dim, f"the output features of {node.module or weight_name}")
            if len(node.inputs) > 2 and node.inputs[2] is not None:
                self.split_leaf(node.inputs[2], -1, f"the bias of {node.module}")
            orig_out = self.orig(out)
            if role == "colwise":
                self.set_out(out, orig_out.rank - 1, f"the output features of {node.module}")
                return [node]
            # vocab-parallel LM head: local logits, then an all_gather along the vocabulary
            local = f"{out}__local"
            self.values[local] = Value(local, _split(orig_out, orig_out.rank - 1, self.tp, "the vocabulary"),
                                       "activation", node.name)
            self.values[out] = Value(out, orig_out, self.g.values[out].kind, f"{node.name}_all_gather")
            return [Node(node.name, node.op, node.source_op, node.inputs, (local,), node.attrs, node.module),
                    self.collective("all_gather", local, out, node.module, f"{node.name}_all_gather",
                                    {"axis": orig_out.rank - 1})]
        # rowwise: the input must be split along its features (the output of a column-parallel chain)
        xt = self.orig(x)
        if self.dims.get(x) != xt.rank - 1:
            return self.refuse(node, f"row-parallel {node.module} reads an input not split along its features")
        self.split_leaf(weight_name, k_dim, f"the input features of {node.module or weight_name}")
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            self.use_replicated(node.inputs[2])
        return self.partial_then_reduce(node, out)

    def partial_then_reduce(self, node: Node, out: str) -> list[Node]:
        """`node` writes a partial sum; an all_reduce after it writes `out` (so its readers are unchanged)."""
        partial = f"{out}__partial"
        self.values[partial] = Value(partial, self.orig(out), "activation", node.name)
        self.values[out] = Value(out, self.orig(out), self.g.values[out].kind, f"{node.name}_all_reduce")
        outputs = tuple(partial if o == out else o for o in node.outputs)
        return [Node(node.name, node.op, node.source_op, node.inputs, outputs, node.attrs, node.module),
                self.collective("all_reduce", partial, out, node.module, f"{node.name}_all_reduce", {})]

    def attention(self, node: Node) -> list[Node]:
        q, k, v = node.inputs[:3]
        if self.dims.get(q) != 1 or self.orig(q).rank != 4:
            return self.refuse(node, "attention whose queries are not split along the heads of [B, H, L, E]")
        for name in (k, v):
            if name in self.dims:
                if self.dims[name] != 1:
                    return self.refuse(node, f"attention key/value {name} split along dim {self.dims[name]}")
            elif self.is_leaf(name):
                self.split_leaf(name, 1, f"the KV heads of {name}")
            else:
                return self.refuse(node, f"attention key/value {name} is replicated")
        mask = node.inputs[3] if len(node.inputs) > 3 else None
        if mask is not None and mask not in self.dims:
            mt = self.orig(mask)
            if mt.rank == 4 and mt.shape[1] == self.orig(q).shape[1] and self.is_leaf(mask):
                self.split_leaf(mask, 1, "the heads of the attention mask")
            elif mt.rank == 4 and mt.shape[1] != 1:
                return self.refuse(node, "an attention mask with per-head rows that is not a graph input")
        self.set_out(node.outputs[0], 1, "the attention heads")
        return [node]

    def follow(self, node: Node, op: str, split: list[str]) -> list[Node]:
        """Elementwise ops, row kernels, reductions, concatenation: the output keeps the split dim, counted from
        the right (inputs broadcast from the right), unless the op reduces or joins along it."""
        if op not in _FOLLOWING:
            return self.refuse(node, f"{op}: no sharding rule")
        out = node.outputs[0]
        ot = self.orig(out)
        neg = {self.dims[n] - self.orig(n).rank for n in split}
        if len(neg) != 1 or len(node.outputs) != 1 and op not in ("topk", "sort"):
            return self.refuse(node, "inputs split along different dims")
        k = neg.pop()
        if -k > ot.rank or ot.shape[k] != self.orig(split[0]).shape[self.dims[split[0]]]:
            return self.refuse(node, f"{op} changes the split dim")
        axis = node.attrs.get("axis")
        if op in NORM_OPS or op in ("topk", "sort", "cumsum"):
            norm_numel = node.attrs.get("norm_numel")
            if isinstance(axis, int) and axis % ot.rank == k % ot.rank:
                return self.refuse(node, f"{op} along the split dim")
            if norm_numel and math.prod(ot.shape[k:]) <= norm_numel:
                return self.refuse(node, f"{op} normalises over the split dim")
        if op == "concat" and any(self.orig(n).shape[k] != ot.shape[k] for n in node.inputs if n is not None):
            return self.refuse(node, "concatenation along the split dim")
        for n in node.inputs:
            if n is None or n in split:
                continue
            t = self.orig(n)
            if -k <= t.rank and t.shape[k] > 1:
                if self.is_leaf(n):  # a weight or input of the full width: split it with the activation
                    self.split_leaf(n, k, f"{n} dim {k}")
                else:
                    return self.refuse(node, f"input {n} is replicated but spans the split dim")
            else:
                self.use_replicated(n)
        for o in node.outputs:
            if self.orig(o).rank >= -k and self.orig(o).shape[k] == ot.shape[k]:
                self.set_out(o, self.orig(o).rank + k, f"{o}")
        return [node]


@graph_pass("shard_tensor_parallel", requires={"canonical"})
def shard_tensor_parallel(graph: Graph, tp: int, algorithm: str = "ring") -> ShardResult:
    """The graph one device of a `tp`-way tensor-parallel group runs (module docstring); tp = 1 returns the graph.

    >>> import graphperf
    >>> from graphperf.passes import canonicalize
    >>> g = canonicalize(graphperf.load_graph(graphperf.ModelRequest(
    ...     "llama3-8b", config="tiny", phase="decode", batch=2, kv_len=16))[0]).graph
    >>> r = shard_tensor_parallel(g, 2)
    >>> r.summary()["collectives"], r.refused
    ({'all_gather': 1, 'all_reduce': 5}, [])
    """
    if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
        raise UsageError(f"--tp {tp!r}: the tensor-parallel degree must be an integer >= 1")
    if tp == 1:
        return ShardResult.of(graph, 1)
    s = _Sharder(graph, tp, algorithm)
    s.run()
    if not any(d is not None for d in s.decided.values()):
        raise UsageError(f"{graph.name}: no matmul matched the tensor-parallel plan ({', '.join(TP_PLAN)}); "
                         "this model cannot be sharded yet: run it with --tp 1")
    meta = {**graph.meta, "tensor_parallel": tp}
    return ShardResult.of(Graph(graph.name, s.nodes, s.values, graph.outputs, meta), tp, s.collectives, s.refused)


@dataclass
class PipelineStage:
    """One pipeline stage: the graph its devices run, the layers it holds, and the activations it receives."""

    graph: Graph
    layers: tuple[int, int]  # [first, last] decoder layer index held
    received: list[str]  # activations sent by the previous stage (graph inputs here)
    received_bytes: int


def _layer_of(module: str) -> Optional[int]:
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == "layers" and parts[1].isdigit():
        return int(parts[1])
    return None


def split_pipeline(graph: Graph, pp: int) -> list[PipelineStage]:
    """Pipeline parallelism: `graph`'s decoder layers (modules ``layers.N``) split into `pp` consecutive stages of
    as equal a number of layers as possible (the first stages take one more when `pp` does not divide them). The
    nodes before the first layer (the embedding) go to the first stage, those after the last (final norm, LM head)
    to the last; a node outside the layers (rotary tables) stays with the layer it sits between. Each stage is a
    `Graph` whose inputs include the activations the previous stages produced (kind ``input``: received over the
    link); nothing is mutated. UsageError for a pp below 1 or above the number of layers.

    >>> import graphperf
    >>> from graphperf.passes import canonicalize
    >>> g = canonicalize(graphperf.load_graph(graphperf.ModelRequest(
    ...     "llama3-8b", config="tiny", phase="decode", batch=2, kv_len=16))[0]).graph
    >>> [(s.layers, s.received) for s in split_pipeline(g, 2)]
    [((0, 0), []), ((1, 1), ['add_5'])]
    """
    layers = sorted({n for n in (_layer_of(node.module) for node in graph.nodes) if n is not None})
    if isinstance(pp, bool) or not isinstance(pp, int) or pp < 1:
        raise UsageError(f"--pp {pp!r}: the pipeline-parallel degree must be an integer >= 1")
    if pp > max(len(layers), 1):
        raise UsageError(f"--pp {pp}: {graph.name} has {len(layers)} decoder layers to split; choose a pp <= "
                         f"{len(layers)}")
    per, extra = divmod(len(layers), pp)
    stage_of: dict[int, int] = {}
    i = 0
    for s in range(pp):
        for _ in range(per + (1 if s < extra else 0)):
            stage_of[layers[i]] = s
            i += 1
    buckets: list[list[Node]] = [[] for _ in range(pp)]
    current = 0
    for node in graph.nodes:
        layer = _layer_of(node.module)
        if layer is not None:
            current = stage_of[layer]
        buckets[current].append(node)
    produced_in = {out: s for s, nodes in enumerate(buckets) for node in nodes for out in node.outputs}
    stages = []
    for s, nodes in enumerate(buckets):
        values: dict[str, Value] = {}
        received: list[str] = []
        mine = {out for node in nodes for out in node.outputs}
        for node in nodes:
            for name in node.inputs:
                if name is None or name in values:
                    continue
                v = graph.values[name]
                if name in mine or v.producer is None:
                    values[name] = v
                else:
                    values[name] = Value(name, v.type, "input", None, v.source_name)
                    received.append(name)
            for out in node.outputs:
                values[out] = graph.values[out]
        later = {name for t in range(s + 1, pp) for node in buckets[t] for name in node.inputs if name is not None}
        outputs = [o for o in mine if o in later or o in graph.outputs]
        outputs = [o for o in graph.outputs if o in mine] + sorted(set(outputs) - set(graph.outputs))
        first = min(n for n in layers if stage_of[n] == s)
        last = max(n for n in layers if stage_of[n] == s)
        stages.append(PipelineStage(Graph(f"{graph.name}[stage {s}]", nodes, values, outputs,
                                          {**graph.meta, "pipeline_stage": s, "pipeline_parallel": pp}),
                                    (first, last), received,
                                    sum(graph.values[n].type.nbytes for n in received if produced_in.get(n, s) < s)))
    return stages
