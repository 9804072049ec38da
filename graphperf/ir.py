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
    """An op identity: `domain` ("graphperf" for canonical ops, else the frontend) and `name`.

    Cost rules are keyed by it; ``str(op)`` is `name` for a canonical op, ``"domain::name"`` otherwise
    (the spelling reports use for unknown ops).

    Attributes
    ----------
    domain : str
        ``"graphperf"`` for the canonical ops (`graphperf.canonical`), else the frontend's domain
        (``"aten"``, ``"onnx"``, a custom-op namespace).
    name : str
        The op's name within its domain.

    Example
    -------
    >>> from graphperf import OpId, canonical
    >>> canonical("matmul") == OpId("graphperf", "matmul")
    True
    >>> str(OpId("acme", "acme.frobnicate.default"))
    'acme::acme.frobnicate.default'
    """

    domain: str
    name: str

    def __str__(self) -> str:
        return self.name if self.domain == "graphperf" else f"{self.domain}::{self.name}"


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor's static shape and canonical dtype (see `graphperf.dtypes`).

    Attributes
    ----------
    shape : tuple of int
        Every dimension static and non-negative.
    dtype : str
        A canonical dtype name (``"float32"``, ``"bfloat16"``, ``"int64"``, ...).
    numel : int
        Number of elements (derived).
    nbytes : int
        Size in bytes, sub-byte dtypes rounded up to a whole byte (derived).
    rank : int
        Number of dimensions (read-only property).

    Raises
    ------
    KeyError
        `dtype` is not a canonical dtype name.
    ValueError
        A dimension that is not a non-negative int.

    Example
    -------
    >>> from graphperf import TensorType
    >>> t = TensorType((4, 8), "bfloat16")
    >>> t.numel, t.nbytes, t.rank, str(t)
    (32, 64, 2, 'bfloat16[4,8]')
    """

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
        """The number of dimensions."""
        return len(self.shape)

    def __str__(self) -> str:
        return _type_str(self.shape, self.dtype)


@lru_cache(maxsize=65536)
def _type_str(shape: tuple[int, ...], dtype: str) -> str:
    return f"{dtype}[{','.join(map(str, shape))}]"


@dataclass(slots=True)
class Value:
    """A tensor in the graph. `kind` is one of VALUE_KINDS; `producer` is a node name or None.

    Attributes
    ----------
    name : str
        The value's name, unique in its graph (the key in `Graph.values`).
    type : TensorType or None
        Shape and dtype; None where the frontend gives none (a non-tensor value).
    kind : str
        ``"input"``, ``"weight"`` (parameters, initializers, constants) or ``"activation"``.
    producer : str or None
        The name of the node that writes it; None for inputs and weights.
    source_name : str
        The frontend's name (parameter path, initializer name); "" where none.

    Example
    -------
    >>> from graphperf import TensorType, Value
    >>> w = Value("p_weight", TensorType((16, 8), "float32"), kind="weight", source_name="fc.weight")
    >>> w.kind, w.producer, w.type.nbytes
    ('weight', None, 512)
    """

    name: str
    type: Optional[TensorType]
    kind: str = "activation"
    producer: Optional[str] = None
    source_name: str = ""  # the frontend's name (parameter path, initializer name)


@dataclass(slots=True)
class Node:
    """One op application: a canonical (or frontend) op reading and writing named values.

    Attributes
    ----------
    name : str
        Unique in its graph.
    op : OpId
        The canonical op identity (`graphperf.canonical`), or the frontend's for an op with no
        canonical mapping (counted as unknown unless a user rule covers it).
    source_op : str
        The frontend's own op name (``"aten.mm.default"``, ``"MatMul"``).
    inputs : tuple of (str or None)
        Value names, in the order `graphperf.ops` states for the op; None for an omitted optional input.
    outputs : tuple of str
        Value names written.
    attrs : Mapping[str, Any]
        The op's attributes, normalised names and Python values (see `graphperf.ops`).
    module : str
        The layer path it came from (``"layers.3.attn"``); "" where unknown.

    Example
    -------
    >>> from graphperf import Node, canonical
    >>> n = Node("mm_0", canonical("matmul"), "aten.mm.default", ("x", "w"), ("y",), {"trans_b": True}, "fc")
    >>> str(n.op), n.attrs["trans_b"], n.module
    ('matmul', True, 'fc')
    """

    name: str
    op: OpId
    source_op: str
    inputs: tuple[Optional[str], ...]  # value names; None for an omitted optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    module: str = ""  # layer path, e.g. "layers.3.attn"; "" where unknown


class Graph:
    """Nodes in topological order and the values they connect.

    Parameters
    ----------
    name : str
        The model's name.
    nodes : iterable of Node
        In topological order: every input a node reads is a graph input, a weight or an earlier
        node's output.
    values : Mapping[str, Value]
        Every value a node reads or writes, by name.
    outputs : iterable of str
        Names of the graph's output values.
    meta : Mapping[str, Any], optional
        Free-form facts about the capture (``meta["model"]`` describes the model after `capture`).

    Attributes
    ----------
    name, nodes, values, outputs, meta
        As given (`nodes` a list, `values` and `meta` dicts, `outputs` a tuple).

    Raises
    ------
    ValueError
        A node reads a value not defined before it, or writes one that has no `Value`.

    Example
    -------
    >>> from graphperf import Graph, Node, TensorType, Value, canonical
    >>> t = TensorType((4, 8), "float32")
    >>> values = {"x": Value("x", t, kind="input"), "y": Value("y", t, producer="relu_0")}
    >>> g = Graph("tiny", [Node("relu_0", canonical("relu"), "aten.relu.default", ("x",), ("y",))], values, ["y"])
    >>> len(g), [str(n.op) for n in g], g.consumers()
    (1, ['relu'], {'x': ['relu_0']})
    """

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
        """The `TensorType` of each named value (None for a None name or an untyped value)."""
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
        """Every value of kind ``"weight"`` (parameters, initializers, constants)."""
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
