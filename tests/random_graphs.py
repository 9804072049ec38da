"""Random DAGs for the fusion property tests, drawn by hypothesis (`graphs`).

Nodes: matmuls with a weight (which may change the iteration space), unary and binary elementwise
ops (binary ones may broadcast a row or a per-row column), row reductions (mean/max over the last
dim, keepdim: [rows, 1]) and softmax over the last dim. `build_graph` makes every choice through a
chooser with `choice`, `random` and `randint` (the methods of a `random.Random`); `_Draws` takes
each choice from hypothesis, so a failing graph shrinks to a small one.
"""

from __future__ import annotations

from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical

UNARY, BINARY = ("relu", "silu", "exp", "neg", "gelu", "sigmoid"), ("add", "mul", "sub", "maximum")
REDUCE = ("reduce_mean", "reduce_max")


class _Draws:
    """The chooser interface of `random.Random`, backed by hypothesis draws."""

    def __init__(self, data) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def choice(self, seq):
        return self.data.draw(self.st.sampled_from(list(seq)))

    def random(self) -> float:
        return self.data.draw(self.st.floats(0.0, 1.0, exclude_max=True))

    def randint(self, a: int, b: int) -> int:
        return self.data.draw(self.st.integers(a, b))


def graphs(max_nodes: int = 25):
    """A hypothesis strategy of random DAGs (2..max_nodes nodes)."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        data = draw(st.data())
        return build_graph(_Draws(data), draw(st.integers(2, max_nodes)), "drawn")

    return strategy()


def build_graph(rng, n_nodes: int, name: str) -> Graph:
    dtype = rng.choice(("float32", "bfloat16"))
    rows = rng.choice((1, 4, 32))
    widths = (8, 16)
    values: dict[str, Value] = {}
    live: list[str] = []

    def new(name, shape, kind="activation", producer=None):
        values[name] = Value(name, TensorType(shape, dtype), kind, producer)
        return name

    for i in range(rng.randint(1, 3)):
        live.append(new(f"x{i}", (rows, rng.choice(widths)), "input"))
    nodes: list[Node] = []
    for i in range(n_nodes):
        name = f"n{i}"
        kind = rng.random()
        full = [v for v in live if values[v].type.shape[1] != 1]
        a = rng.choice(full)
        shape = values[a].type.shape
        if kind < 0.15:  # matmul with a weight: may change the iteration space
            w = new(f"w{i}", (shape[1], rng.choice(widths)), "weight")
            out = new(f"v{i}", (rows, values[w].type.shape[1]), producer=name)
            nodes.append(Node(name, canonical("matmul"), "mm", (a, w), (out,)))
        elif kind < 0.25:  # a row reduction: [rows, w] -> [rows, 1]
            op = rng.choice(REDUCE)
            out = new(f"v{i}", (rows, 1), producer=name)
            nodes.append(Node(name, canonical(op), op, (a,), (out,), {"axes": (1,), "keepdims": True}))
        elif kind < 0.3:
            out = new(f"v{i}", shape, producer=name)
            nodes.append(Node(name, canonical("softmax"), "softmax", (a,), (out,), {"axis": -1, "log": False}))
        elif kind < 0.55:
            op = rng.choice(UNARY)
            src = rng.choice(live)
            out = new(f"v{i}", values[src].type.shape, producer=name)
            nodes.append(Node(name, canonical(op), op, (src,), (out,)))
        else:
            op = rng.choice(BINARY)
            same = [v for v in live if values[v].type.shape == shape]
            cols = [v for v in live if values[v].type.shape == (rows, 1)]
            r = rng.random()
            if r < 0.6 or not cols and r < 0.8:
                b = rng.choice(same)
            elif r < 0.8:
                b = rng.choice(cols)
            else:
                b = new(f"r{i}", (1, shape[1]), "weight")
            out = new(f"v{i}", shape, producer=name)
            nodes.append(Node(name, canonical(op), op, (a, b), (out,)))
        live.append(out)
    read = {v for n in nodes for v in n.inputs}
    outputs = [v for v in live if values[v].producer and (v not in read or rng.random() < 0.1)]
    return Graph(name, nodes, values, outputs)
