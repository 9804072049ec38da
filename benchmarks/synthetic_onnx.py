"""Generate a large synthetic ONNX graph for the scale benchmarks (benchmarks/run.py).

The graph is a stack of pre-norm transformer MLP blocks on a static [batch, seq, hidden] activation:

    h = LayerNormalization(x, gamma, beta)          # over hidden
    h = MatMul(h, W_up)          [hidden, ffn]
    h = Add(h, b_up)
    h = Gelu(h) | Relu(h)        (alternating block by block)
    h = MatMul(h, W_down)        [ffn, hidden]
    h = Add(h, b_down)
    x = Add(x, h)                # residual

i.e. 7 nodes per block (the last block is cut short so the graph has exactly `nodes` nodes).
Every block reads the *same* initializers, so the file stays small (19 MB of float32 weights at
the default BERT-base sizes, plus about 100 bytes per node) however many nodes it has. Every shape is static; nothing needs binding.

Run as a script to write a file:  python benchmarks/synthetic_onnx.py out.onnx --nodes 100000
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["make_model", "write_model", "NODES_PER_BLOCK", "OPSET"]

NODES_PER_BLOCK = 7
OPSET = 20  # Gelu is in the default domain from opset 20; LayerNormalization from 17


def _init(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.02).astype(np.float32), name)


def make_model(nodes: int = 100_000, batch: int = 1, seq: int = 128, hidden: int = 768,
               ffn: int = 3072, seed: int = 0) -> onnx.ModelProto:
    """A model with exactly `nodes` nodes (see the module docstring for the block)."""
    if nodes < 1:
        raise ValueError("nodes must be >= 1")
    rng = np.random.default_rng(seed)
    inits = [
        _init("ln_gamma", (hidden,), rng), _init("ln_beta", (hidden,), rng),
        _init("w_up", (hidden, ffn), rng), _init("b_up", (ffn,), rng),
        _init("w_down", (ffn, hidden), rng), _init("b_down", (hidden,), rng),
    ]
    out: list[onnx.NodeProto] = []
    x = "x"
    b = 0
    while len(out) < nodes:
        p = f"blk{b}"
        act = "Gelu" if b % 2 == 0 else "Relu"
        block = [  # (node, last dimension of its output)
            (helper.make_node("LayerNormalization", [x, "ln_gamma", "ln_beta"], [f"{p}_ln"], name=f"{p}/ln",
                              axis=-1, epsilon=1e-5), hidden),
            (helper.make_node("MatMul", [f"{p}_ln", "w_up"], [f"{p}_up"], name=f"{p}/up"), ffn),
            (helper.make_node("Add", [f"{p}_up", "b_up"], [f"{p}_upb"], name=f"{p}/up_bias"), ffn),
            (helper.make_node(act, [f"{p}_upb"], [f"{p}_act"], name=f"{p}/act"), ffn),
            (helper.make_node("MatMul", [f"{p}_act", "w_down"], [f"{p}_down"], name=f"{p}/down"), hidden),
            (helper.make_node("Add", [f"{p}_down", "b_down"], [f"{p}_downb"], name=f"{p}/down_bias"), hidden),
            (helper.make_node("Add", [x, f"{p}_downb"], [f"{p}_out"], name=f"{p}/residual"), hidden),
        ]
        take = block[: nodes - len(out)]
        out.extend(n for n, _ in take)
        x, width = take[-1][0].output[0], take[-1][1]
        b += 1
    graph = helper.make_graph(
        out, f"synthetic_mlp_{nodes}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, seq, hidden])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, seq, width])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="graphperf-benchmarks")
    model.ir_version = 10
    return model


def write_model(path: str, nodes: int = 100_000, **kw) -> str:
    """Write `make_model(nodes, **kw)` to `path` (one file, no external data); returns path."""
    onnx.save_model(make_model(nodes, **kw), path)
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--ffn", type=int, default=3072)
    a = ap.parse_args(argv)
    write_model(a.path, a.nodes, seq=a.seq, hidden=a.hidden, ffn=a.ffn)
    onnx.checker.check_model(a.path)
    print(a.path)


if __name__ == "__main__":
    main()
