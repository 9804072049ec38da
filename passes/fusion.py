"""Fusion core shared by every fusion rule: group bookkeeping, legality, and the fused graph.

A fusion rule decides *which* nodes belong together; this module decides whether a group is legal
and builds the new graph. `Grouper(graph, rule)` holds the groups a rule forms; `result()` returns a
`FusionResult` (a `PassResult`, passes/result.py) with a new `Graph` (the input is never mutated), the
groups and every refused candidate as a `Refusal` with its reason.

Legality, for every rule:

- every member has a cost rule that counts it (an unknown member would be hidden inside a group);
- the group stays convex: no path leaves the group through an outside node (or through another
  group, taken as the one kernel it becomes: entering one member leaves through all of them) and
  comes back in; otherwise the outside node would have to run both before and after the kernel.

Materialisation: a group becomes one `fused` node placed at its last member. It reads each external
input once and writes every member output that is read outside the group or is a graph output
(intermediates with outside consumers stay materialised); its flops, matrix_flops and
transcendentals are the members' sums, counted by the members' own rules and carried in
``attrs["cost"]`` (rule: graphperf/rules/fused.py). So fusion conserves FLOPs and never increases
bytes. ``attrs["rule"]`` names the rule; rules may attach more attributes (e.g. an attention tile).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional

from graphperf.cost import WORK_FIGURES
from graphperf.count import apply_rule
from graphperf.ir import Graph, Node, Value
from graphperf.ops import canonical

from .result import PassResult, Refusal

__all__ = ["FusionResult", "Grouper", "member_cost", "numel"]

@dataclass(frozen=True, kw_only=True)
class FusionResult(PassResult):
    """A fusion rule's `PassResult`: the new graph, the groups it formed and the candidates it refused (typed
    `Refusal`s, where: "producer"/"consumer", or "nodes" and a named group's "group"); `modified` when a group
    formed. Build it with `FusionResult.of`."""

    groups: list[dict]  # {"node", "members", "member_ops", "inputs", "outputs", ...rule extras}
    rule: str = "elementwise"

    @classmethod
    def of(cls, graph: Graph, groups: list[dict], refused: list[Refusal], rule: str) -> "FusionResult":
        return cls(graph, bool(groups), [_record(rule, groups)], refused, groups=groups, rule=rule)

    def to_dict(self) -> dict:
        """The rewrite record the what-if report lists: rule, groups formed, nodes fused, groups."""
        return _record(self.rule, self.groups)


def _record(rule: str, groups: list[dict]) -> dict:
    return {"rewrite": "fuse", "rule": rule, "groups_formed": len(groups),
            "nodes_fused": sum(len(g["members"]) for g in groups), "groups": groups}


def member_cost(node: Node, values) -> Optional[dict]:
    """The node's arithmetic by its own rule, or None when no rule counts it."""
    c = apply_rule(node, [None if n is None else values[n].type for n in node.inputs],
                   [values[n].type for n in node.outputs]).cost
    return None if c is None else {k: getattr(c, k) for k in WORK_FIGURES}


def numel(node: Node, values, port: str = "out") -> Optional[int]:
    """Element count of the node's first output (port "out") or first input (port "in")."""
    names = node.outputs if port == "out" else node.inputs
    name = names[0] if names else None
    return None if name is None else values[name].type.numel


class Grouper:
    """The groups one fusion rule forms over `graph`, with the legality checks every rule shares."""

    def __init__(self, graph: Graph, rule: str) -> None:
        self.graph, self.rule = graph, rule
        self.values = graph.values
        self.index = {n.name: i for i, n in enumerate(graph.nodes)}
        self.by_name = {n.name: n for n in graph.nodes}
        self.consumers = graph.consumers()
        self.succ: dict[str, set[str]] = {n.name: set() for n in graph.nodes}
        for name, users in self.consumers.items():
            producer = self.values[name].producer
            if producer is not None:
                self.succ[producer].update(users)
        self.group_of: dict[str, int] = {}
        self.groups: list[Optional[list[str]]] = []  # None: dissolved
        self.extras: dict[int, dict] = {}
        self.refused: list[Refusal] = []
        self._costs: dict[str, Optional[dict]] = {}

    # -- queries ---------------------------------------------------------------------------------
    def cost(self, name: str) -> Optional[dict]:
        if name not in self._costs:
            self._costs[name] = member_cost(self.by_name[name], self.values)
        return self._costs[name]

    def producers(self, node: Node) -> list[str]:
        """Distinct producer nodes of `node`'s inputs, in input order."""
        out: list[str] = []
        for name in node.inputs:
            p = None if name is None else self.values[name].producer
            if p is not None and p not in out:
                out.append(p)
        return out

    def members(self, name: str) -> set[str]:
        g = self.group_of.get(name)
        return set(self.groups[g]) if g is not None else {name}

    def uncounted(self, names: Iterable[str]) -> Optional[str]:
        return next((n for n in names if self.cost(n) is None), None)

    def escape(self, group: set[str]) -> Optional[str]:
        """An outside node on a path that leaves `group` and comes back into it, or None."""
        limit = max(self.index[m] for m in group)
        stack = [s for m in group for s in self.succ[m] if s not in group]
        seen: set[str] = set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            g = self.group_of.get(n)
            unit = self.groups[g] if g is not None and self.groups[g] is not None else (n,)
            seen.update(unit)
            if min(self.index[u] for u in unit) > limit:
                continue  # runs after every member: cannot lead back in
            for u in unit:
                for s in self.succ[u]:
                    if s in group:
                        return n
                    stack.append(s)
        return None

    def check(self, group: set[str]) -> Optional[tuple[str, str]]:
        """(kind, reason) when `group` is not a legal kernel, else None."""
        missing = self.uncounted(sorted(group, key=self.index.__getitem__))
        if missing is not None:
            return "uncounted", f"{missing} has no cost rule that counts it"
        via = self.escape(group)
        if via is not None:
            return "cycle", f"would create a cycle through {via}"
        return None

    # -- changes ---------------------------------------------------------------------------------
    def refuse(self, kind: str, reason: str, **where: Any) -> None:
        """Record a declined candidate; `kind` must name a `RefusalKind` (ValueError otherwise: a bug)."""
        self.refused.append(Refusal(self.rule, kind, reason, where))

    def join(self, producer: str, node: str) -> int:
        """Put `node` into `producer`'s group (creating it); returns the group id."""
        g = self.group_of.get(producer)
        if g is None:
            g = len(self.groups)
            self.groups.append([producer])
            self.group_of[producer] = g
        self.groups[g].append(node)
        self.group_of[node] = g
        return g

    def add(self, names: list[str], **extras: Any) -> int:
        g = len(self.groups)
        self.groups.append(sorted(names, key=self.index.__getitem__))
        for n in names:
            self.group_of[n] = g
        if extras:
            self.extras[g] = extras
        return g

    def dissolve(self, g: int) -> None:
        for n in self.groups[g]:
            del self.group_of[n]
        self.groups[g] = None
        self.extras.pop(g, None)

    # -- the new graph -----------------------------------------------------------------------------
    def result(self) -> FusionResult:
        graph, values, by_name, index = self.graph, self.values, self.by_name, self.index
        graph_outputs = set(graph.outputs)
        new_values: dict[str, Value] = dict(values)
        replaced: dict[str, Node] = {}
        drop: set[str] = set()
        records = []
        fused_op = canonical("fused")
        for g, members in enumerate(self.groups):
            if members is None:
                continue
            mset = set(members)
            ordered = sorted(members, key=index.__getitem__)
            inputs: list[str] = []
            outputs: list[str] = []
            total = dict.fromkeys(WORK_FIGURES, 0)
            for m in ordered:
                node = by_name[m]
                for k, v in self.cost(m).items():
                    total[k] += v
                for name in node.inputs:
                    if name is not None and name not in inputs and values[name].producer not in mset:
                        inputs.append(name)
                for name in node.outputs:
                    if name in graph_outputs or any(u not in mset for u in self.consumers.get(name, ())):
                        outputs.append(name)
                    else:
                        del new_values[name]
            last = ordered[-1]
            fname = f"fused_{last}"
            extras = self.extras.get(g, {})
            attrs = {"members": tuple(ordered), "member_ops": tuple(by_name[m].op.name for m in ordered),
                     "cost": total, "rule": self.rule, **extras}
            fnode = Node(fname, fused_op, "+".join(by_name[m].source_op for m in ordered), tuple(inputs),
                         tuple(outputs), attrs, by_name[last].module)
            for name in outputs:
                new_values[name] = replace(values[name], producer=fname)
            replaced[last] = fnode
            drop.update(mset - {last})
            records.append({"node": fname, "members": list(ordered), "member_ops": list(attrs["member_ops"]),
                            "inputs": list(inputs), "outputs": list(outputs), **extras})
        nodes = _toposort([replaced.get(n.name, n) for n in graph.nodes if n.name not in drop], new_values)
        new = Graph(graph.name, nodes, new_values, graph.outputs, dict(graph.meta))
        return FusionResult.of(new, records, self.refused, self.rule)


def _toposort(nodes: list[Node], values) -> list[Node]:
    """A topological order that keeps the original order wherever the dataflow allows it (a fused node
    sits at its last member, but an outside reader of an earlier member's output must follow it)."""
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
        raise AssertionError("fusion produced a cycle")  # the legality check rules this out
    return out
