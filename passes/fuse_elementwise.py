"""Elementwise-chain fusion: producer -> consumer groups of elementwise nodes become one `fused` node.

`fuse_elementwise(graph)` returns a `FusionResult` with a new `Graph` (the input is never mutated),
the groups formed and every refused candidate with its reason.

Candidates are the dataflow edges between two elementwise nodes (`graphperf.ops.ELEMENTWISE`).
Nodes are visited in topological order and a node joins the group of an elementwise producer when:

- both have a cost rule that counts them (an unknown member would be hidden inside a group);
- both iterate over the same space (the same output element count): a broadcast *input* is fine,
  but a group whose members write different-sized outputs is not one kernel;
- the merge creates no cycle: no path leaves the group through an outside node (or another group,
  taken as the one kernel it becomes) and comes back to the joining node (the outside node would
  have to run both before and after the kernel).

A group's fused node reads each external input once and writes every member output that is read
outside the group or is a graph output (intermediates with outside consumers stay materialised);
its flops, matrix_flops and transcendentals are the members' sums, counted by the members' own rules
and carried in ``attrs["cost"]`` (rule: graphperf/rules/fused.py). So fusion conserves FLOPs and
never increases bytes. Singleton groups stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from graphperf.ir import Graph, Node, Value
from graphperf.ops import ELEMENTWISE, canonical
from graphperf.rules import rule_for

__all__ = ["FusionResult", "fuse_elementwise", "is_elementwise"]


@dataclass(frozen=True)
class FusionResult:
    graph: Graph
    groups: list[dict]  # {"node", "members", "member_ops", "inputs", "outputs"}
    refused: list[dict]  # {"rule", "kind", "producer", "consumer", "reason"}

    def to_dict(self) -> dict:
        return {"rewrite": "fuse", "rule": "elementwise", "groups_formed": len(self.groups),
                "nodes_fused": sum(len(g["members"]) for g in self.groups), "groups": self.groups}


def is_elementwise(node: Node) -> bool:
    return node.op.domain == "graphperf" and node.op.name in ELEMENTWISE


def _member_cost(node: Node, values) -> dict | None:
    rule = rule_for(node.op)
    if rule is None:
        return None
    try:
        c = rule([None if n is None else values[n].type for n in node.inputs],
                 [values[n].type for n in node.outputs], node.attrs)
    except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError):
        return None
    return {"flops": c.flops, "matrix_flops": c.matrix_flops, "transcendentals": c.transcendentals}


def _numel(node: Node, values) -> int | None:
    t = values[node.outputs[0]].type if node.outputs else None
    return None if t is None else t.numel


def fuse_elementwise(graph: Graph) -> FusionResult:
    values = graph.values
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    by_name = {n.name: n for n in graph.nodes}
    consumers = graph.consumers()
    succ: dict[str, set[str]] = {n.name: set() for n in graph.nodes}
    for name, users in consumers.items():
        producer = values[name].producer
        if producer is not None:
            succ[producer].update(users)
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    costs: dict[str, dict | None] = {}
    refused: list[dict] = []

    def cost(node: Node):
        if node.name not in costs:
            costs[node.name] = _member_cost(node, values)
        return costs[node.name]

    def reaches_outside(members: set[str], target: str) -> str | None:
        """An outside node on a path from `members` to `target`, or None. Other groups count as the
        one kernel they will become: entering one member of a group leaves through all its members."""
        limit = index[target]
        stack = [s for m in members for s in succ[m] if s not in members and s != target]
        seen: set[str] = set()
        while stack:
            n = stack.pop()
            if n in seen or index[n] > limit:
                continue
            seen.add(n)
            unit = groups[group_of[n]] if n in group_of else (n,)
            seen.update(unit)
            for u in unit:
                if target in succ[u]:
                    return n
                stack.extend(s for s in succ[u] if s not in members)
        return None

    for node in graph.nodes:
        if not is_elementwise(node):
            continue
        producers = []
        for name in node.inputs:
            p = None if name is None else values[name].producer
            if p is not None and p not in producers and is_elementwise(by_name[p]):
                producers.append(p)
        joined = None
        for p in producers:
            reason = kind = None
            g = group_of.get(p)
            members = set(groups[g]) if g is not None else {p}
            if joined is not None and g == joined:
                continue
            if cost(node) is None or cost(by_name[p]) is None:
                reason, kind = "a member has no cost rule that counts it", "uncounted"
            elif _numel(node, values) != _numel(by_name[p], values):
                reason = (f"different iteration space: {values[p_out].type} vs {values[node.outputs[0]].type}"
                          if (p_out := by_name[p].outputs[0]) else "different iteration space")
                kind = "iteration_space"
            elif joined is not None:
                reason = f"{node.name} already joined the group of {groups[joined][0]}"
                kind = "joined_another_group"
            else:
                via = reaches_outside(members, node.name)
                if via is not None:
                    reason, kind = f"would create a cycle through {via}", "cycle"
            if reason is not None:
                refused.append({"rule": "elementwise", "kind": kind, "producer": p, "consumer": node.name, "reason": reason})
                continue
            if g is None:
                g = len(groups)
                groups.append([p])
                group_of[p] = g
            groups[g].append(node.name)
            group_of[node.name] = g
            joined = g

    graph_outputs = set(graph.outputs)
    new_values: dict[str, Value] = dict(values)
    replaced: dict[str, Node] = {}
    drop: set[str] = set()
    records = []
    fused_op = canonical("fused")
    for members in groups:
        mset = set(members)
        ordered = sorted(members, key=index.__getitem__)
        inputs: list[str] = []
        outputs: list[str] = []
        total = {"flops": 0, "matrix_flops": 0, "transcendentals": 0}
        for m in ordered:
            node = by_name[m]
            for k, v in cost(node).items():
                total[k] += v
            for name in node.inputs:
                if name is None or name in inputs:
                    continue
                if values[name].producer not in mset:
                    inputs.append(name)
            for name in node.outputs:
                outside = any(u not in mset for u in consumers.get(name, ()))
                if outside or name in graph_outputs:
                    outputs.append(name)
                else:
                    del new_values[name]
        last = ordered[-1]
        fname = f"fused_{last}"
        fnode = Node(fname, fused_op, "+".join(by_name[m].source_op for m in ordered), tuple(inputs),
                     tuple(outputs), {"members": tuple(ordered), "member_ops": tuple(by_name[m].op.name for m in ordered),
                                      "cost": total}, by_name[last].module)
        for name in outputs:
            new_values[name] = replace(values[name], producer=fname)
        replaced[last] = fnode
        drop.update(mset - {last})
        records.append({"node": fname, "members": list(ordered), "member_ops": list(fnode.attrs["member_ops"]),
                        "inputs": list(inputs), "outputs": list(outputs)})
    nodes = _toposort([replaced.get(n.name, n) for n in graph.nodes if n.name not in drop], new_values)
    new = Graph(graph.name, nodes, new_values, graph.outputs, dict(graph.meta))
    return FusionResult(new, records, refused)


def _toposort(nodes: list[Node], values) -> list[Node]:
    """A topological order that keeps the original order wherever the dataflow allows it (a fused node
    sits at its last member, but an outside reader of an earlier member's output must follow it)."""
    import heapq

    pos = {n.name: i for i, n in enumerate(nodes)}
    deps: dict[str, set[str]] = {}
    users: dict[str, list[str]] = {}
    for n in nodes:
        deps[n.name] = {values[v].producer for v in n.inputs if v is not None and values[v].producer is not None}
        for d in deps[n.name]:
            users.setdefault(d, []).append(n.name)
    ready = [pos[n] for n, d in deps.items() if not d]
    heapq.heapify(ready)
    out: list[Node] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        out.append(node)
        for u in users.get(node.name, ()):
            deps[u].discard(node.name)
            if not deps[u]:
                heapq.heappush(ready, pos[u])
    if len(out) != len(nodes):
        raise AssertionError("elementwise fusion produced a cycle")  # the legality check rules this out
    return out
