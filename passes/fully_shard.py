"""ZeRO-3 / PyTorch FSDP ``FULL_SHARD`` as a rewrite: the forward or backward graph one device of a ``dp``-way group
runs when every parameter is sharded over the group and gathered, one wrapped unit at a time, just before use.

Units (FSDP's ``transformer_auto_wrap_policy``: one unit per decoder layer, the root unit holding the rest): a
parameter belongs to the unit named by its module path up to and including the first all-digit segment
(``layers.3.mlp.up_proj.weight`` -> ``layers.3``, ``h.0.attn.c_attn.weight`` -> ``h.0``); a parameter with no such
segment (embeddings, the final norm, the LM head) belongs to the root unit ``""`` (`parameter_unit`). A unit's
parameters form one flat buffer of one dtype (FSDP's ``FlatParameter``) padded to a multiple of dp elements; each
device holds ``ceil(numel / dp)`` of them.

Where a unit runs is read off the graph, not off module names (the ATen graphs carry none): the values that are its
parameters are named by ``graph.meta["parameters"]`` (``{parameter: [values]}``, graphperf/train/capture.py: the
placeholder in the forward; in the backward the placeholder and the forward's views of it saved for the backward),
extended through free view ops (``t(w)``). Then:

- forward (a graph without ``meta["gradients"]``): unit u's first node is the first node that reads one of its
  values; an ``all_gather`` (group dp, ring; input the shard ``[ceil(numel/dp)]``, output the padded flat buffer
  ``[dp * ceil(numel/dp)]``) is inserted before it. The root unit is gathered before the first node: the root
  module's forward spans the whole model.
- backward (a graph with ``meta["gradients"]``): unit u's first node is the first node that reads one of its values
  or produces one of its gradients; an ``all_gather`` is inserted before it, except for the root unit, which FSDP
  does not reshard after the forward (FSDP1's ``_post_forward_reshard`` and FSDP2's root ``reshard_after_forward``
  both keep the root gathered, since the backward needs it at once): it stays gathered through the backward. Once
  the node producing the unit's last gradient has run, a ``reduce_scatter`` (group dp, ring; input the padded flat
  gradient buffer, output the shard) is inserted after it; its payload is the unit's gradient bytes, padded.

Units are listed in the order their first nodes run. A unit none of whose values the graph reads (and, in the
backward, with no gradient) gets no collective. The collectives' timing with prefetch is graphperf/train/zero.py's;
this pass only places them. With ``dp == 1`` nothing is sharded (``modified`` False). Refusals (`UsageError`, one
line): dp < 1, a graph that names no parameters, a unit whose parameters have several dtypes (a FlatParameter holds
one).

Example
-------
>>> from graphperf.ir import Graph, Node, TensorType, Value
>>> from graphperf.ops import canonical
>>> w, x = TensorType((8, 8), "float32"), TensorType((2, 8), "float32")
>>> values = {"x": Value("x", x, "input"), "w0": Value("w0", w, "weight"), "w1": Value("w1", w, "weight"),
...           "h0": Value("h0", x, producer="mm0"), "h1": Value("h1", x, producer="mm1")}
>>> nodes = [Node("mm0", canonical("matmul"), "mm", ("x", "w0"), ("h0",)),
...          Node("mm1", canonical("matmul"), "mm", ("h0", "w1"), ("h1",))]
>>> g = Graph("fw", nodes, values, ["h1"], {"parameters": {"layers.0.weight": ["w0"], "layers.1.weight": ["w1"]}})
>>> res = fully_shard(g, dp=4)
>>> [(u.name, u.numel, u.first_node) for u in res.units]
[('layers.0', 64, 'mm0'), ('layers.1', 64, 'mm1')]
>>> [n.name for n in res.graph.nodes]
['fsdp_layers.0_forward_all_gather', 'mm0', 'fsdp_layers.1_forward_all_gather', 'mm1']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical
from graphperf.rules.registry import is_free

from .result import PassResult, graph_pass

__all__ = ["ROOT", "ShardUnit", "FullyShardResult", "fully_shard", "parameter_unit", "shard_numel"]

#: The root unit's name: the parameters outside every numbered layer.
ROOT = ""


def parameter_unit(name: str) -> str:
    """The FSDP unit of parameter `name`: its module path up to the first all-digit segment, else `ROOT`.

    >>> parameter_unit("model.layers.12.mlp.up_proj.weight"), parameter_unit("lm_head.weight")
    ('model.layers.12', '')
    """
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return ROOT


def shard_numel(numel: int, dp: int) -> int:
    """Elements of one device's shard of a flat buffer of `numel` padded to a multiple of `dp`: ``ceil(numel/dp)``.

    >>> shard_numel(10, 4), shard_numel(8, 4)
    (3, 2)
    """
    return -(-numel // dp)


@dataclass(frozen=True)
class ShardUnit:
    """One FSDP unit in one graph: its parameters, elements, bytes and dtype (unpadded), the node before which it is
    gathered (`first_node`) and its all_gather node ("" when it stays gathered: the root in the backward, or when
    the graph never reads it); in the backward the node after which its gradients are all produced
    (`last_gradient`) and its reduce_scatter node."""

    index: int
    name: str
    parameters: tuple[str, ...]
    numel: int
    nbytes: int
    dtype: str
    first_node: str
    all_gather: str = ""
    last_gradient: str = ""
    reduce_scatter: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "unit": self.name or "(root)", "parameters": len(self.parameters),
                "numel": self.numel, "bytes": self.nbytes, "dtype": self.dtype, "first_node": self.first_node,
                "all_gather": self.all_gather, "last_gradient": self.last_gradient,
                "reduce_scatter": self.reduce_scatter}


@dataclass(frozen=True, kw_only=True)
class FullyShardResult(PassResult):
    """The graph with the units' all_gathers (and, in the backward, reduce_scatters), dp, the phase and the units in
    the order they run."""

    dp: int
    phase: str
    units: tuple[ShardUnit, ...] = field(default_factory=tuple)


def _units(parameters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in parameters:
        out.setdefault(parameter_unit(name), []).append(name)
    return out


@graph_pass("fully_shard")
def fully_shard(graph: Graph, dp: int, parameters: Optional[Mapping[str, Sequence[str]]] = None,
                numel: Optional[Mapping[str, tuple[int, str]]] = None) -> FullyShardResult:
    """Insert FSDP FULL_SHARD's per-unit all_gathers (and, in a backward, reduce_scatters) for a `dp`-way group
    (see the module docstring); the input graph is not changed.

    Parameters
    ----------
    graph : Graph
        A forward or backward graph of graphperf/train/capture.py (``meta["parameters"]``; a backward also names
        its ``meta["gradients"]``).
    dp : int
        Devices in the group (each collective's ``group_size``).
    parameters : mapping parameter -> values, optional
        Instead of ``graph.meta["parameters"]``.
    numel : mapping parameter -> (elements, dtype), optional
        The parameters' sizes when the graph does not hold them (a backward reads some parameters only through
        views or not at all); default: the first value's type.

    Returns
    -------
    FullyShardResult
    """
    if isinstance(dp, bool) or not isinstance(dp, int) or dp < 1:
        raise UsageError(f"--dp {dp!r}: the data-parallel degree must be an integer >= 1")
    params = dict(graph.meta.get("parameters") or {}) if parameters is None else dict(parameters)
    if not params:
        raise UsageError(f"{graph.name}: the graph names no parameters (meta['parameters']); sharding needs a graph "
                         "from graphperf.train.capture")
    gradients = {g["parameter"]: g["value"] for g in graph.meta.get("gradients") or ()}
    phase = "backward" if gradients else "forward"
    position = {n.name: i for i, n in enumerate(graph.nodes)}
    owner: dict[str, str] = {}
    for p, vals in params.items():
        for v in vals:
            owner[v] = p
    first_read: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v in owner:
                p = owner[v]
                if is_free(node.op) and node.inputs[0] == v:  # a view of the parameter: the parameter itself
                    for out in node.outputs:
                        owner[out] = p
                else:
                    first_read.setdefault(p, i)
    sizes = dict(numel or {})
    rows = []
    for unit, names in _units(params).items():
        types = {}
        for p in names:
            if p in sizes:
                types[p] = sizes[p]
            elif params[p]:
                t = graph.values[params[p][0]].type
                types[p] = (t.numel, t.dtype)
        dtypes = {d for _, d in types.values()}
        if len(dtypes) > 1:
            raise UsageError(f"unit {unit or '(root)'}: parameters of dtypes {', '.join(sorted(dtypes))}; an FSDP "
                             "unit's flat parameter holds one dtype")
        produced = [position[graph.values[gradients[p]].producer] for p in names
                    if p in gradients and graph.values[gradients[p]].producer in position]
        reads = [first_read[p] for p in names if p in first_read]
        starts = reads + produced
        if not starts:
            continue
        elements = sum(n for n, _ in types.values())
        dtype = dtypes.pop() if dtypes else "float32"
        first = 0 if unit == ROOT and phase == "forward" else min(starts)
        rows.append((first, unit, tuple(names), elements, dtype, max(produced) if produced else None))
    rows.sort(key=lambda r: (r[0], r[1] != ROOT))
    if dp == 1:
        units = tuple(ShardUnit(i, u, names, n, TensorType((n,), d).nbytes, d, graph.nodes[first].name)
                      for i, (first, u, names, n, d, _) in enumerate(rows))
        return FullyShardResult(graph, False, [{"rewrite": "fully_shard", "dp": 1, "phase": phase, "units": len(units),
                                                "note": "one device: nothing to shard"}], [],
                                dp=1, phase=phase, units=units)
    values = dict(graph.values)
    before: dict[int, list[Node]] = {}
    after: dict[int, list[Node]] = {}
    outputs = list(graph.outputs)
    units = []
    for i, (first, unit, names, n, dtype, last) in enumerate(rows):
        shard, full = TensorType((shard_numel(n, dp),), dtype), TensorType((dp * shard_numel(n, dp),), dtype)
        tag = f"fsdp_{unit or 'root'}"
        attrs = {"group_size": dp, "algorithm": "ring"}
        gather = ""
        if not (unit == ROOT and phase == "backward"):
            gather = f"{tag}_{phase}_all_gather"
            values[f"{tag}.{phase}.shard"] = Value(f"{tag}.{phase}.shard", shard, "input", None,
                                                   f"FSDP unit {unit or '(root)'} (local shard)")
            values[f"{tag}.{phase}.gathered"] = Value(f"{tag}.{phase}.gathered", full, "activation", gather)
            before.setdefault(first, []).append(Node(gather, canonical("all_gather"), "fsdp.all_gather",
                                                     (f"{tag}.{phase}.shard",), (f"{tag}.{phase}.gathered",),
                                                     dict(attrs), unit))
        scatter = ""
        if last is not None:
            scatter = f"{tag}_reduce_scatter"
            values[f"{tag}.grads"] = Value(f"{tag}.grads", full, "input", None,
                                           f"FSDP unit {unit or '(root)'} (flat gradient buffer)")
            values[f"{tag}.grad_shard"] = Value(f"{tag}.grad_shard", shard, "activation", scatter)
            after.setdefault(last, []).append(Node(scatter, canonical("reduce_scatter"), "fsdp.reduce_scatter",
                                                   (f"{tag}.grads",), (f"{tag}.grad_shard",), dict(attrs), unit))
            outputs.append(f"{tag}.grad_shard")
        units.append(ShardUnit(i, unit, names, n, TensorType((n,), dtype).nbytes, dtype, graph.nodes[first].name,
                               gather, graph.nodes[last].name if last is not None else "", scatter))
    nodes = []
    for i, node in enumerate(graph.nodes):
        nodes.extend(before.get(i, ()))
        nodes.append(node)
        nodes.extend(after.get(i, ()))
    new = Graph(graph.name, nodes, values, outputs, {**graph.meta, "fully_shard": dp})
    summary = {"rewrite": "fully_shard", "dp": dp, "phase": phase, "units": len(units),
               "all_gather": sum(1 for u in units if u.all_gather),
               "reduce_scatter": sum(1 for u in units if u.reduce_scatter)}
    return FullyShardResult(new, True, [summary], [], dp=dp, phase=phase, units=tuple(units))
