"""Padding rewrite: pad GEMM dimensions up to a multiple, as nanoGPT pads gpt2's vocabulary 50257 -> 50304.

`pad_dims(graph, parse_pad("50257=64"))` returns a `PadResult` with a new `Graph` (the input is never
mutated) in which every tensor dimension of size 50257 that a GEMM node (`graphperf.ops.GEMM_OPS`)
reads or writes through one of its matrix dimensions, and every dimension connected to one through
the nodes around it, has size 50304. `parse_pad("auto")` pads every misaligned dimension of a GEMM
node (`graphperf.alignment.misaligned_dims`) to its smallest aligned size.

Which dimensions (tracked as (value, axis) pairs, never by size alone):

- GEMM nodes tie their operands' dimensions together: matmul M (a, out), K (a, b), N (b, out, bias) and
  the batch dims; convolution channels (x and w's Cin, w and out's Cout, bias) and the batch, never its
  spatial or kernel dims, and only for ungrouped convolutions; attention E (q, k), Ev (v, out), L (q,
  out, mask rows), S (k, v, mask columns) and the head/batch dims. A seed is every such dimension of
  size SIZE; padding one pads its whole tie.
- Any other node passes a padded dimension on to its other inputs and outputs at the same position
  counted from the right (broadcasting), where the size is also SIZE; a reshape or permutation view
  that moves it passes it to the one dimension of size SIZE on its other side. Where a view merges it
  with others (a flatten), padding stops and the node is listed in ``boundaries``: a real model slices
  the padding off there. So gpt2's LM head pads its weight's rows and the logits' last dim, and the
  token embedding, tied to the LM head, is padded too (its gather still reads only the gathered rows).
- Fused and linalg nodes carry costs computed from the unpadded shapes: a dimension that reaches one
  is refused (pad before fusing; `graphperf whatif` does).

Padding adds work and the rewrite says so: the touched nodes are counted again by their own rules
(`2 * M * K * N_padded` for the LM head), and the record holds the values padded (shapes before and
after) and the extra FLOPs, bytes moved and weight bytes. Projected time follows from the new shapes;
whatever a target charges for misaligned dimensions (graphperf/alignment.py) is the projection's
business, not this pass's.

Refused, with the reason (a `Refusal`, passes/result.py, read as ``{"rule": "pad", "kind", "size", "reason",
...}``): a SIZE that no GEMM node has as a matrix dimension (``not_found``), one already a multiple
(``aligned``), a tie that reaches a fused or linalg node (``fixed_cost``), channels of a grouped convolution
(``grouped_conv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from graphperf.alignment import aligned_multiple, is_gemm_node, misaligned_dims
from graphperf.count import apply_rule
from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value

from .result import PassResult, Refusal, graph_pass

__all__ = ["PadSpec", "PadResult", "parse_pad", "pad_dims"]

_MAX_MULTIPLE = 1 << 20
_VIEWS = frozenset(("view", "reshape_copy"))
_FIXED_COST = frozenset(("fused", "linalg"))

Dim = tuple[str, int]  # (value name, axis counted from the right: -1 is the last)


@dataclass(frozen=True)
class PadSpec:
    """What ``--pad`` asks for: ``auto`` (every misaligned GEMM dimension) or explicit SIZE -> MULTIPLE pairs."""

    auto: bool = False
    multiples: Mapping[int, int] = field(default_factory=dict)  # SIZE -> MULTIPLE

    @property
    def mode(self) -> str:
        """``"auto"`` or ``"explicit"``."""
        return "auto" if self.auto else "explicit"


@dataclass(frozen=True)
class PadResult(PassResult):
    """The padded graph (a new `Graph`), the rewrite's record (values padded, extra work) and the refusals;
    `modified` when some value was padded."""

    @property
    def rewrite(self) -> dict:
        """The one rewrite record (``{"rewrite": "pad", ...}``)."""
        return self.rewrites[0]


def parse_pad(text: str) -> PadSpec:
    """`auto` or `SIZE=MULTIPLE[,SIZE=MULTIPLE...]` (`50257=64`: 50257 -> 50304); one-line UsageError otherwise."""
    items = [p.strip() for p in text.split(",") if p.strip()]
    usage = "expected auto or SIZE=MULTIPLE[,SIZE=MULTIPLE...] with positive integers, e.g. --pad 50257=64"
    if not items:
        raise UsageError(f"--pad {text!r}: {usage}")
    if items == ["auto"]:
        return PadSpec(auto=True)
    if "auto" in items:
        raise UsageError(f"--pad {text!r}: auto pads every misaligned dimension and stands alone; drop it or the sizes")
    multiples: dict[int, int] = {}
    for item in items:
        size, sep, multiple = item.partition("=")
        try:
            s, m = int(size), int(multiple)
        except ValueError:
            raise UsageError(f"--pad {item!r}: {usage}") from None
        if not sep or s <= 0 or m <= 0 or m > _MAX_MULTIPLE:
            raise UsageError(f"--pad {item!r}: SIZE and MULTIPLE must be positive integers (MULTIPLE at most "
                             f"{_MAX_MULTIPLE}), e.g. --pad 50257=64")
        if s in multiples:
            raise UsageError(f"--pad {item!r}: size {s} is given twice")
        multiples[s] = m
    return PadSpec(multiples=multiples)


# -- which dimensions a GEMM node ties together --------------------------------------------------


def _types(graph: Graph, names) -> list[Optional[TensorType]]:
    return [None if n is None else graph.values[n].type for n in names]


def _ties(graph: Graph, node: Node) -> tuple[list[list[Dim]], Optional[str]]:
    """The GEMM node's matrix dimensions as ties of (value, axis), and why channels are left out (or None)."""
    op = node.op.name
    ins = list(node.inputs) + [None] * 4
    ti = _types(graph, ins)
    out = node.outputs[0] if node.outputs else None
    to = graph.values[out].type if out is not None else None
    if to is None or any(t is None for t in ti[:2]) or (op == "attention" and ti[2] is None):
        return [], None
    if op == "matmul":
        return _matmul_ties(ins, ti, out, to, node.attrs), None
    if op == "conv":
        return _conv_ties(ins, ti, out, to, node.attrs)
    return _attention_ties(ins, ti, out, to), None


def _right(pairs: Iterable[tuple[Optional[str], Optional[TensorType]]], axis: int) -> list[Dim]:
    return [(n, axis) for n, t in pairs if n is not None and t is not None and t.rank >= -axis]


def _matmul_ties(ins, ti, out, to, attrs) -> list[list[Dim]]:
    (a, b, bias), (ta, tb, tbias) = ins[:3], ti[:3]
    ties: list[list[Dim]] = []
    if ta.rank >= 2 and tb.rank >= 2:
        ta_, tb_ = bool(attrs.get("trans_a")), bool(attrs.get("trans_b"))
        ties.append([(a, -1 if ta_ else -2), (out, -2), *_right([(bias, tbias)], -2)])  # M
        ties.append([(a, -2 if ta_ else -1), (b, -1 if tb_ else -2)])  # K
        ties.append([(b, -2 if tb_ else -1), (out, -1), *_right([(bias, tbias)], -1)])  # N
        for axis in range(-3, -to.rank - 1, -1):  # batch dims, broadcast from the right
            ties.append(_right([(a, ta), (b, tb), (out, to), (bias, tbias)], axis))
    elif ta.rank >= 2:  # matrix @ vector: out [.., M]
        ties += [[(a, -1), (b, -1)], [(a, -2), (out, -1)]]
    elif tb.rank >= 2:  # vector @ matrix: out [.., N]
        ties += [[(a, -1), (b, -2)], [(b, -1), (out, -1)]]
    else:
        ties.append([(a, -1), (b, -1)])
    return ties


def _conv_ties(ins, ti, out, to, attrs) -> tuple[list[list[Dim]], Optional[str]]:
    (x, w, bias), (tx, tw, tbias) = ins[:3], ti[:3]
    r = tx.rank
    if r < 3 or tw.rank != r or to.rank != r:
        return [], None
    ties = [[(x, -r), (out, -r)]]  # batch
    transposed = bool(attrs.get("transposed"))
    cin_w, cout_w = (-r, 1 - r) if transposed else (1 - r, -r)
    if tw.shape[cin_w] != tx.shape[1] or tw.shape[cout_w] != to.shape[1]:
        return ties, f"grouped convolution: its {tx.shape[1]} input and {to.shape[1]} output channels are split " \
                     "into groups"
    ties.append([(x, 1 - r), (w, cin_w)])  # Cin
    ties.append([(w, cout_w), (out, 1 - r), *_right([(bias, tbias)], -1)])  # Cout
    return ties, None


def _attention_ties(ins, ti, out, to) -> list[list[Dim]]:
    (q, k, v, mask), (tq, tk, tv, tm) = ins[:4], ti[:4]
    if tq.rank < 2 or tk.rank < 2 or tv.rank < 2:
        return []
    ties = [[(q, -1), (k, -1)], [(v, -1), (out, -1)],  # E, Ev (heads*E in the 3-D layout)
            [(q, -2), (out, -2), *_right([(mask, tm)], -2)],  # L
            [(k, -2), (v, -2), *_right([(mask, tm)], -1)]]  # S
    for axis in range(-3, -tq.rank - 1, -1):  # heads and batch
        ties.append(_right([(q, tq), (k, tk), (v, tv), (out, to), (mask, tm)], axis))
    return ties


# -- propagation ---------------------------------------------------------------------------------


def _size(graph: Graph, dim: Dim) -> Optional[int]:
    t = graph.values[dim[0]].type
    return None if t is None or t.rank < -dim[1] else t.shape[dim[1]]


class _Walk:
    """The (value, axis) pairs of size `size` that padding reaches from the seeds, and where it stops."""

    def __init__(self, graph: Graph, size: int, ties: Mapping[str, list[list[Dim]]], consumers) -> None:
        self.graph, self.size, self.ties, self.consumers = graph, size, ties, consumers
        self.by_name = {n.name: n for n in graph.nodes}
        self.dims: set[Dim] = set()
        self.touched: dict[str, None] = {}  # node names, in the order reached
        self.boundaries: list[dict] = []
        self.fixed: list[str] = []  # fused/linalg nodes reached

    def run(self, seeds: Iterable[Dim]) -> None:
        stack = [d for d in seeds if _size(self.graph, d) == self.size]
        while stack:
            dim = stack.pop()
            if dim in self.dims:
                continue
            self.dims.add(dim)
            value = self.graph.values[dim[0]]
            nodes = ([value.producer] if value.producer else []) + self.consumers.get(dim[0], [])
            for name in nodes:
                stack.extend(self._through(self.by_name[name], dim))

    def _through(self, node: Node, dim: Dim) -> list[Dim]:
        self.touched.setdefault(node.name, None)
        if node.op.domain == "graphperf" and node.op.name in _FIXED_COST:
            if node.name not in self.fixed:
                self.fixed.append(node.name)
            return []
        if node.name in self.ties:
            for tie in self.ties[node.name]:
                if dim in tie:
                    return [d for d in tie if _size(self.graph, d) == self.size]
            self._boundary(node, dim, "not one of its matrix dimensions (a spatial or kernel dimension)")
            return []
        others = [n for n in (*node.inputs, *node.outputs) if n is not None and n != dim[0]]
        same = [(n, dim[1]) for n in others if _size(self.graph, (n, dim[1])) == self.size]
        if node.op.domain == "graphperf" and node.op.name in _VIEWS and len(node.inputs) == 1 \
                and len(node.outputs) == 1 and others:
            other = others[0]
            t, u = self.graph.values[dim[0]].type, self.graph.values[other].type
            if same or t is None or u is None or t.numel != u.numel:
                return same
            moved = [i for i, s in enumerate(u.shape) if s == self.size]  # a permutation or reshape moved it
            if len(moved) == 1:
                return [(other, moved[0] - u.rank)]
            self._boundary(node, dim, f"the view reshapes {t} into {u}, merging or splitting the dimension: "
                                      "padding stops here")
        return same

    def _boundary(self, node: Node, dim: Dim, why: str) -> None:
        self.boundaries.append({"node": node.name, "value": dim[0], "axis": dim[1], "reason": why})


# -- the pass ------------------------------------------------------------------------------------


def _refuse(kind: str, size: int, reason: str, **where) -> Refusal:
    return Refusal("pad", kind, reason, {"size": size, **where})


def _targets(graph: Graph, spec: PadSpec, gemms: list[Node], refused: list[Refusal]) -> dict[int, tuple[int, int]]:
    """SIZE -> (MULTIPLE, padded size); auto: the smallest aligned size of every misaligned dimension."""
    if not spec.auto:
        out = {}
        for size, m in spec.multiples.items():
            padded = -(-size // m) * m
            if padded == size:
                refused.append(_refuse("aligned", size, f"{size} is already a multiple of {m}: nothing to pad"))
            else:
                out[size] = (m, padded)
        return out
    out: dict[int, tuple[int, int]] = {}
    for node in gemms:
        for d in misaligned_dims(graph, node):
            m = aligned_multiple(d.dtype)
            if d.size not in out or out[d.size][0] < m:
                out[d.size] = (m, d.padded_size)
    return dict(sorted(out.items()))


def _cost(node: Node, values) -> Optional[tuple[int, int, int]]:
    c = apply_rule(node, [None if n is None else values[n].type for n in node.inputs],
                   [values[n].type for n in node.outputs]).cost
    return None if c is None else (c.flops, c.matrix_flops, c.bytes_read + c.bytes_written)


@graph_pass("pad_dims", requires={"canonical"})
def pad_dims(graph: Graph, spec: PadSpec | str) -> PadResult:
    """Pad the GEMM dimensions `spec` names (a `PadSpec` or `parse_pad` text); see the module docstring."""
    if isinstance(spec, str):
        spec = parse_pad(spec)
    gemms = [n for n in graph.nodes if is_gemm_node(n) and n.op.name != "fused"]
    refused: list[Refusal] = []
    targets = _targets(graph, spec, gemms, refused)
    ties: dict[str, list[list[Dim]]] = {}
    grouped: dict[str, tuple[str, set[int]]] = {}  # node -> (why its channels are not tied, the channel counts)
    for node in gemms:
        ties[node.name], why = _ties(graph, node)
        if why:
            x, w, o = _types(graph, (node.inputs[0], node.inputs[1], node.outputs[0]))
            grouped[node.name] = why, {x.shape[1], w.shape[0], w.shape[1], o.shape[1]}
    consumers = graph.consumers()
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    new_shapes: dict[str, list[int]] = {}
    sizes = []
    for size, (multiple, padded) in targets.items():
        seeds = [d for t in ties.values() for tie in t for d in tie if _size(graph, d) == size]
        for name, (why, channels) in grouped.items():
            if size in channels:
                refused.append(_refuse("grouped_conv", size, f"{why}; padding them changes the groups", node=name))
        if not seeds:
            if not any(r["size"] == size for r in refused):
                refused.append(_refuse("not_found", size, f"no matmul, conv or attention node has a matrix dimension "
                                                          f"of {size}"))
            continue
        walk = _Walk(graph, size, ties, consumers)
        walk.run(seeds)
        if walk.fixed:
            refused.append(_refuse("fixed_cost", size, f"a dimension of {size} reaches {', '.join(walk.fixed[:3])}, "
                                                       "whose cost was computed from unpadded shapes; pad before "
                                                       "fusing", node=walk.fixed[0]))
            continue
        for name, axis in walk.dims:
            shape = new_shapes.setdefault(name, list(graph.values[name].type.shape))
            shape[axis] = padded
        sizes.append({"size": size, "multiple": multiple, "padded_size": padded,
                      "values": sorted({n for n, _ in walk.dims}), "nodes": sorted(walk.touched, key=order.__getitem__),
                      "boundaries": walk.boundaries})
    new = _rebuild(graph, new_shapes, {s["size"]: s["padded_size"] for s in sizes})
    return PadResult(new, bool(new_shapes), [_record(graph, new, spec, sizes, new_shapes)], refused)


def _rebuild(graph: Graph, new_shapes: Mapping[str, list[int]], padded: Mapping[int, int]) -> Graph:
    values = dict(graph.values)
    for name, shape in new_shapes.items():
        v = values[name]
        values[name] = Value(v.name, TensorType(tuple(shape), v.type.dtype), v.kind, v.producer, v.source_name)
    nodes = []
    for node in graph.nodes:
        n = node.attrs.get("norm_numel")
        first = node.inputs[0] if node.inputs else None
        if n in padded and first in new_shapes and new_shapes[first][-1] == padded[n]:
            node = Node(node.name, node.op, node.source_op, node.inputs, node.outputs,
                        {**node.attrs, "norm_numel": padded[n]}, node.module)  # a norm over the padded dim
        nodes.append(node)
    return Graph(graph.name, nodes, values, graph.outputs, dict(graph.meta))


def _record(old: Graph, new: Graph, spec: PadSpec, sizes: list[dict], new_shapes) -> dict:
    touched = list(dict.fromkeys(n for s in sizes for n in s["nodes"]))
    old_nodes = {n.name: n for n in old.nodes}
    new_nodes = {n.name: n for n in new.nodes}
    nodes = []
    extra = [0, 0, 0]
    for name in touched:
        before, after = _cost(old_nodes[name], old.values), _cost(new_nodes[name], new.values)
        if before is None or after is None or before == after:
            continue
        nodes.append({"node": name, "op": str(old_nodes[name].op), "flops_before": before[0], "flops_after": after[0],
                      "bytes_before": before[2], "bytes_after": after[2]})
        for i in range(3):
            extra[i] += after[i] - before[i]
    for s in sizes:
        s["values"] = [{"name": n, "kind": old.values[n].kind, "before": str(old.values[n].type),
                        "after": str(new.values[n].type)} for n in s["values"]]
    weight_extra = sum(new.values[n].type.nbytes - old.values[n].type.nbytes for n in new_shapes
                       if old.values[n].kind == "weight")
    return {"rewrite": "pad", "mode": spec.mode, "sizes": sizes, "values_padded": len(new_shapes),
            "extra_flops": extra[0], "extra_matrix_flops": extra[1], "extra_bytes": extra[2],
            "extra_weight_bytes": weight_extra, "nodes": nodes}
