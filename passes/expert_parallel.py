"""Expert parallelism for mixture-of-experts decoders as a rewrite: the graph one device of an ``ep``-way group runs.

The layout is GShard's (Lepikhin et al. 2020), as DeepSpeed-MoE and vLLM's data-parallel attention with expert
parallelism run it: every device serves its own batch (the graph's ``B * T`` tokens) through the attention, the
norms and the router, whose weights are replicated; the ``E`` experts of each MoE block are spread over the group,
``E / ep`` per device. `shard_expert_parallel(graph, ep)` returns a new `Graph` (the input is never mutated) in which,
in each MoE block (the matmuls on stacked expert weights ``w_gate`` / ``w_up`` / ``w_down``, ``[E, ...]``):

- an ``all_to_all`` *dispatch* sends each expert its slots: its input is the block's gathered expert input
  ``[E, C, D]`` (this device's tokens, ``C`` capacity slots per expert), its output ``[E/ep, ep*C, D]`` (the slots
  of this device's experts, ``C`` from each of the ``ep`` devices);
- the experts' matmuls and the elementwise ops between them run on ``E/ep`` experts of ``ep*C`` slots each
  (their weights hold ``E/ep`` experts);
- an ``all_to_all`` *combine* after the ``w_down`` matmul returns every slot to the device of its token
  (``[E/ep, ep*C, D] -> [E, C, D]``), where the routing weights scale them and ``index_add`` sums them, unchanged.

Routing: by default uniform, every expert receives the same share of the tokens, so each device's experts get
``C`` slots from every device. ``imbalance`` f (1 <= f <= ep, default 1) describes skewed routing by its one figure
that sets the step: the busiest device's experts receive f times the mean, ``ceil(f * ep * C)`` slots each (an
expert-parallel load balancer such as DeepSeek's EPLB exists to bring f down). The graph is that device's: every
device waits for it at the combine, so its step is the group's. Its dispatch receives ``f`` times what it sends
(the all_to_all is priced on the larger side of the exchange, graphperf/rules/collective.py), its expert FLOPs are
f times the uniform ones; f = 1 is the uniform graph.

With top-k routing and capacity factor 1 the graph holds ``E * C = k * B * T`` slots (``C = ceil(k * B * T / E)``,
models/mixtral.py: exact when ``E`` divides ``k * B * T``), so each all_to_all carries a payload of ``S = k * B * T
* hidden * itemsize`` bytes per device, of which it sends ``(ep-1)/ep * S`` to the other devices and receives as
many (graphperf/rules/collective.py prices it on the link). The expert FLOPs one device runs equal the unsharded
graph's (as many slots, on fewer experts), which is ``1/ep`` of the group's expert FLOPs over its ``ep * B * T``
tokens; the expert weights per device are ``1/ep`` of the model's.

On a tensor-parallel graph (passes/shard.py, ``graph.meta["tensor_parallel"]`` = tp) the two compose as Megatron-
Core's expert-tensor parallelism does: ``tp * ep`` devices, ``ep`` tensor-parallel groups of ``tp``, each group
serving its own batch; every expert's weights are already split over the group's tp devices (column
``w_gate``/``w_up``, row ``w_down`` with its all_reduce, which stays after the combine), and this pass spreads the
experts over the ``ep`` groups. Rank i of a group exchanges with rank i of the others: an all_to_all group of ``ep``
devices ``tp`` apart (attr ``stride`` = tp: it leaves a node when ``ep * tp`` exceeds ``devices_per_node``). The
activations entering the experts are replicated over the tp ranks (the attention's all_reduce), so each rank sends
the whole payload S: the group carries tp times the bytes a sequence-parallel layout would (that layout is not
modelled).

Collective nodes carry ``group_size`` = ep, ``stride`` = tp and ``algorithm`` ``"ring"``; their names end in
``_all_to_all``.
An MoE block whose expert chain the pass cannot follow (a value of the chain read outside it, a value without the
``[E, C, ...]`` leading dims) keeps all its experts on every device and is listed in `ExpertShardResult.refused`
(kind ``replicated``) with its reason. Refusals that stop the pass (`UsageError`, one line): ep < 1, an ep that
does not divide the expert count, a graph without MoE experts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical, op_name

from .result import PassResult, Refusal, RefusalKind, graph_pass

__all__ = ["EXPERT_WEIGHTS", "ExpertShardResult", "shard_expert_parallel"]

#: The stacked expert weights ``[E, ...]`` of an MoE block, by the end of their names (models/mixtral.py).
EXPERT_WEIGHTS = ("w_gate", "w_up", "w_down")


@dataclass(frozen=True, kw_only=True)
class ExpertShardResult(PassResult):
    """The expert-parallel graph, its degree, the experts each device holds, the all_to_alls it inserted and the
    MoE blocks it left replicated; a `PassResult` whose one record is `summary()`, `modified` when ep > 1."""

    ep: int
    experts_per_device: dict[str, int] = field(default_factory=dict)  # MoE block (module) -> E / ep
    collectives: list[str] = field(default_factory=list)  # inserted node names, graph order

    @classmethod
    def of(cls, graph: Graph, ep: int, per_device: dict = None, collectives: list = (), refused: list = ()):
        per_device, collectives, refused = dict(per_device or {}), list(collectives), list(refused)
        return cls(graph, bool(per_device), [_summary(ep, per_device, collectives, refused)], refused, ep=ep,
                   experts_per_device=per_device, collectives=collectives)

    def summary(self) -> dict:
        """``{"rewrite": "expert_parallel", "ep", "blocks", "collectives": {"all_to_all": n}, "refused"}``."""
        return _summary(self.ep, self.experts_per_device, self.collectives, self.refused)


def _summary(ep: int, per_device: dict, collectives: list, refused: list) -> dict:
    return {"rewrite": "expert_parallel", "ep": ep, "blocks": len(per_device),
            "collectives": {"all_to_all": len(collectives)} if collectives else {}, "refused": len(refused)}


def _expert_role(node: Node, graph: Graph):
    if op_name(node.op) != "matmul" or len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    w = graph.values[node.inputs[1]]
    if w.kind != "weight" or w.type.rank != 3:
        return None
    return next((key for key in EXPERT_WEIGHTS if w.name == key or w.name.endswith(f"_{key}")), None)


@dataclass
class _Block:
    module: str
    matmuls: dict[str, Node]  # role -> node
    experts: int = 0
    src: str = ""  # the gathered expert input [E, C, D]
    region: list[Node] = field(default_factory=list)  # graph order, src's readers up to the w_down matmul


def _blocks(graph: Graph) -> list[_Block]:
    blocks: dict[str, _Block] = {}
    for node in graph.nodes:
        role = _expert_role(node, graph)
        if role is not None:
            blocks.setdefault(node.module, _Block(node.module, {})).matmuls[role] = node
    return list(blocks.values())


def _follow(graph: Graph, block: _Block) -> str:
    """Fill `block`'s expert count, input and region; the reason it cannot be sharded, or ''."""
    m = block.matmuls
    if "w_down" not in m or not ({"w_gate", "w_up"} & set(m)):
        return f"MoE block {block.module}: no w_down matmul after a w_gate / w_up matmul"
    experts = {graph.values[n.inputs[1]].type.shape[0] for n in m.values()}
    if len(experts) != 1:
        return f"MoE block {block.module}: expert weights of different expert counts {sorted(experts)}"
    block.experts = experts.pop()
    srcs = {m[r].inputs[0] for r in ("w_gate", "w_up") if r in m}
    if len(srcs) != 1:
        return f"MoE block {block.module}: w_gate and w_up read different inputs"
    block.src = srcs.pop()
    down = m["w_down"]
    producer = {o: n for n in graph.nodes for o in n.outputs}
    ancestors, stack = set(), [down]
    while stack:  # the nodes the w_down matmul depends on, stopping at the expert input
        n = stack.pop()
        if n.name in ancestors:
            continue
        ancestors.add(n.name)
        stack += [producer[i] for i in n.inputs if i is not None and i != block.src and i in producer]
    reach, block.region = {block.src}, []
    for n in graph.nodes:  # the nodes on a path from the expert input to the w_down matmul, in graph order
        if n.name in ancestors and any(i in reach for i in n.inputs):
            block.region.append(n)
            reach.update(n.outputs)
    src_t = graph.values[block.src].type
    lead = (block.experts, src_t.shape[1] if src_t.rank == 3 else None)
    inside = {o for n in block.region for o in n.outputs}
    weights = {n.inputs[1] for n in m.values()}
    for n in block.region:
        for i in n.inputs:
            if i is not None and i not in inside and i != block.src and i not in weights:
                return f"MoE block {block.module}: {n.name} reads {i}, which is not split over the experts"
        for o in n.outputs:
            if graph.values[o].type.shape[:2] != lead:
                return f"MoE block {block.module}: {o} ({graph.values[o].type}) does not lead with [E, C] = {lead}"
    for n in graph.nodes:
        if n not in block.region and any(i in inside - {down.outputs[0]} for i in n.inputs):
            return f"MoE block {block.module}: {n.name} reads a value of the expert chain outside it"
    if any(o in inside - {down.outputs[0]} for o in graph.outputs):
        return f"MoE block {block.module}: a value of the expert chain is a graph output"
    return ""


def _local(t: TensorType, ep: int, imbalance: float = 1.0) -> TensorType:
    """[E, C, ...] -> [E/ep, ceil(f*ep*C), ...]: this device's experts, the slots every device sends them (f times
    the mean on the busiest device)."""
    return TensorType((t.shape[0] // ep, math.ceil(imbalance * ep * t.shape[1] - 1e-9), *t.shape[2:]), t.dtype)


@graph_pass("shard_expert_parallel", requires={"canonical"})
def shard_expert_parallel(graph: Graph, ep: int, imbalance: float = 1.0) -> ExpertShardResult:
    """The graph one device of an `ep`-way expert-parallel group runs (module docstring); ep = 1 returns the graph.

    >>> import graphperf
    >>> from graphperf.passes import canonicalize
    >>> g = canonicalize(graphperf.load_graph(graphperf.ModelRequest(
    ...     "mixtral-8x7b", config="tiny", phase="decode", batch=4, kv_len=16))[0]).graph
    >>> r = shard_expert_parallel(g, 4)
    >>> r.summary(), r.experts_per_device
    ({'rewrite': 'expert_parallel', 'ep': 4, 'blocks': 2, 'collectives': {'all_to_all': 4}, 'refused': 0}, \
{'layers.0.mlp': 2, 'layers.1.mlp': 2})
    """
    if isinstance(ep, bool) or not isinstance(ep, int) or ep < 1:
        raise UsageError(f"--ep {ep!r}: the expert-parallel degree must be an integer >= 1")
    if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float)) or not 1 <= imbalance <= ep:
        raise UsageError(f"--expert-imbalance {imbalance!r}: the busiest device's share of the routed tokens over the "
                         f"mean must be between 1 (uniform) and ep = {ep} (every token on one device)")
    blocks = _blocks(graph)
    if not blocks:
        raise UsageError(f"{graph.name}: no MoE experts (stacked weights named {', '.join(EXPERT_WEIGHTS)}) to "
                         "spread over devices; --ep applies to mixture-of-experts models such as mixtral-8x7b")
    for b in blocks:
        experts = graph.values[next(iter(b.matmuls.values())).inputs[1]].type.shape[0]
        if experts % ep:
            raise UsageError(f"--ep {ep} does not divide the {experts} experts of {b.module} in {graph.name}; "
                             "choose an ep that divides the expert count")
    if ep == 1:
        return ExpertShardResult.of(graph, 1)

    refused, sharded = [], []
    for b in blocks:
        reason = _follow(graph, b)
        if reason:
            refused.append(Refusal("expert_parallel", RefusalKind.REPLICATED, reason,
                                   {"nodes": sorted(n.name for n in b.matmuls.values())}))
        else:
            sharded.append(b)
    types: dict[str, TensorType] = {}
    rename: dict[tuple[str, str], str] = {}  # (node, input) -> the value it reads instead
    before: dict[str, Node] = {}  # node -> the dispatch inserted before it
    after: dict[str, tuple[Node, str]] = {}  # w_down node -> (the combine after it, its new output)
    new_values: dict[str, Value] = {}
    collective_attrs = {"group_size": ep, "stride": graph.meta.get("tensor_parallel", 1), "algorithm": "ring"}
    for b in sharded:
        src_t = graph.values[b.src].type
        dispatched, down = f"{b.src}__dispatched", b.matmuls["w_down"]
        first = b.region[0]
        name = f"{first.name}_dispatch_all_to_all"
        before[first.name] = Node(name, canonical("all_to_all"), "graphperf.shard.all_to_all", (b.src,),
                                  (dispatched,), dict(collective_attrs), b.module)
        new_values[dispatched] = Value(dispatched, _local(src_t, ep, imbalance), "activation", name)
        for n in b.region:
            rename.update({(n.name, b.src): dispatched})
            for o in n.outputs:
                types[o] = _local(graph.values[o].type, ep, imbalance)
        for n in b.matmuls.values():
            w = graph.values[n.inputs[1]].type
            types[n.inputs[1]] = TensorType((w.shape[0] // ep, *w.shape[1:]), w.dtype)
        out = down.outputs[0]
        local, name = f"{out}__local", f"{down.name}_combine_all_to_all"
        new_values[local] = Value(local, types.pop(out), "activation", down.name)
        after[down.name] = (Node(name, canonical("all_to_all"), "graphperf.shard.all_to_all", (local,), (out,),
                                 dict(collective_attrs), b.module), local)
        new_values[out] = Value(out, graph.values[out].type, graph.values[out].kind, name,
                                graph.values[out].source_name)

    nodes, collectives = [], []
    for n in graph.nodes:
        if n.name in before:
            nodes.append(before[n.name])
            collectives.append(before[n.name].name)
        inputs = tuple(rename.get((n.name, i), i) for i in n.inputs)
        outputs = n.outputs
        if n.name in after:
            outputs = tuple(after[n.name][1] if o == n.outputs[0] else o for o in n.outputs)
        nodes.append(Node(n.name, n.op, n.source_op, inputs, outputs, n.attrs, n.module)
                     if (inputs, outputs) != (n.inputs, n.outputs) else n)
        if n.name in after:
            nodes.append(after[n.name][0])
            collectives.append(after[n.name][0].name)
    values = {name: Value(name, types[name], v.kind, v.producer, v.source_name) if name in types else v
              for name, v in graph.values.items()}
    values.update(new_values)
    meta = {**graph.meta, "expert_parallel": ep, **({"expert_imbalance": imbalance} if imbalance != 1 else {})}
    new = Graph(graph.name, nodes, values, graph.outputs, meta)
    per_device = {b.module: b.experts // ep for b in sharded}
    return ExpertShardResult.of(new, ep, per_device, collectives, refused)
