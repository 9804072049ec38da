"""The frontend-neutral graph IR.

A `Graph` is a list of `Node`s in topological order plus the `Value`s (tensors) they read and
write. Each node carries a canonical op identity (`OpId`, see `graphperf.ops`), the frontend's own
op name (`source_op`), input and output value names, attributes, and the module path it came from.
Each value carries a `TensorType` (static shape, canonical dtype) and a `kind` that tells weights
(parameters, initializers, constants) apart from activations and graph inputs.

The structure is also available as a `networkx.DiGraph` (`Graph.digraph()`), node names as keys,
for passes that want graph algorithms. Nothing in this module computes costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping, Optional

import networkx as nx

from .dtypes import itemsize_bits

__all__ = ["OpId", "TensorType", "Value", "Node", "Graph", "VALUE_KINDS"]

VALUE_KINDS = ("input", "weight", "activation")


@dataclass(frozen=True, slots=True)
class OpId:
    """An op identity: `domain` ("graphperf" for canonical ops, else the frontend) and `name`."""

    domain: str
    name: str

    def __str__(self) -> str:
        return self.name if self.domain == "graphperf" else f"{self.domain}::{self.name}"


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor's static shape and canonical dtype (see `graphperf.dtypes`)."""

    shape: tuple[int, ...]
    dtype: str
    # derived once at construction: counting reads them for every node
    numel: int = field(init=False, repr=False, compare=False)
    nbytes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bits = itemsize_bits(self.dtype)  # KeyError for a non-canonical dtype name
        for d in self.shape:
            if not isinstance(d, int) or d < 0:
                raise ValueError(f"shape {self.shape}: every dimension must be a non-negative int")
        numel = math.prod(self.shape)
        object.__setattr__(self, "numel", numel)
        object.__setattr__(self, "nbytes", (numel * bits + 7) // 8)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return _type_str(self.shape, self.dtype)


@lru_cache(maxsize=65536)
def _type_str(shape: tuple[int, ...], dtype: str) -> str:
    return f"{dtype}[{','.join(map(str, shape))}]"


@dataclass(slots=True)
class Value:
    """A tensor in the graph. `kind` is one of VALUE_KINDS; `producer` is a node name or None."""

    name: str
    type: Optional[TensorType]
    kind: str = "activation"
    producer: Optional[str] = None
    source_name: str = ""  # the frontend's name (parameter path, initializer name)


@dataclass(slots=True)
class Node:
    name: str
    op: OpId
    source_op: str
    inputs: tuple[Optional[str], ...]  # value names; None for an omitted optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    module: str = ""  # layer path, e.g. "layers.3.attn"; "" where unknown


class Graph:
    """Nodes in topological order and the values they connect."""

    def __init__(self, name: str, nodes: Iterable[Node], values: Mapping[str, Value],
                 outputs: Iterable[str] = (), meta: Optional[Mapping[str, Any]] = None):
        self.name = name
        self.nodes: list[Node] = list(nodes)
        self.values: dict[str, Value] = dict(values)
        self.outputs: tuple[str, ...] = tuple(outputs)
        self.meta: dict[str, Any] = dict(meta or {})
        self._digraph: Optional[nx.DiGraph] = None
        self._check()

    def _check(self) -> None:
        seen = {n for n, v in self.values.items() if v.producer is None}
        for node in self.nodes:
            for name in node.inputs:
                if name is not None and name not in seen:
                    raise ValueError(f"node {node.name}: input {name!r} is not defined before it")
            for name in node.outputs:
                if name not in self.values:
                    raise ValueError(f"node {node.name}: output {name!r} has no Value")
                seen.add(name)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def types(self, names: Iterable[Optional[str]]) -> list[Optional[TensorType]]:
        return [None if n is None else self.values[n].type for n in names]

    def node_dtype(self, node: Node) -> str:
        """The dtype a node computes in: its first typed input's, else its first output's ("" if none)."""
        values = self.values
        for name in node.inputs:
            if name is not None:
                t = values[name].type
                if t is not None:
                    return t.dtype
        for name in node.outputs:
            t = values[name].type
            if t is not None:
                return t.dtype
        return ""

    def weights(self) -> list[Value]:
        return [v for v in self.values.values() if v.kind == "weight"]

    def consumers(self) -> dict[str, list[str]]:
        """value name -> names of the nodes that read it, in graph order."""
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name is not None:
                    out.setdefault(name, []).append(node.name)
        return out

    def digraph(self) -> nx.DiGraph:
        """The node-level dataflow graph: an edge producer -> consumer per value read."""
        if self._digraph is None:
            g = nx.DiGraph()
            for node in self.nodes:
                g.add_node(node.name, node=node)
                for name in node.inputs:
                    producer = None if name is None else self.values[name].producer
                    if producer is not None:
                        g.add_edge(producer, node.name, value=name)
            self._digraph = g
        return self._digraph
