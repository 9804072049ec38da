"""The torch.compile frontend: an ATen-level `torch.fx.GraphModule` (aot_autograd's forward, backward or
inference graph) -> `Graph`.

Shapes and dtypes come from each node's ``meta["val"]`` (fake tensors), as in the torch.export
frontend, through the same node machinery (`fx_nodes`). The caller says which placeholders are
weights (parameters and buffers); every other tensor placeholder (user inputs, activations saved
for backward, tangents) is an "input". Symbolic sizes of a dynamic-shape graph are bound to the
sizes it was compiled for (the shape environment's hints) unless `dims` binds them. Module paths
come from ``nn_module_stack`` (forward) or ``fwd_nn_module_stack`` (backward nodes carry the
forward module they differentiate), written as plain dotted paths (``layers.0.attn``).
"""

from __future__ import annotations

import re
from typing import Any, Collection, Mapping, Optional

import torch

from ..ir import Graph
from .fx_nodes import FxNodeCapture

__all__ = ["capture_fx", "hint_dims", "module_path"]

_ROOT = re.compile(r"^(?:L|G)\['[^']*'\]\.?")  # dynamo's root: L['self'], L['model'], G['net']
_INDEX = re.compile(r"\[(\d+)\]|\['([^']*)'\]|\._modules\['([^']*)'\]")


def module_path(fx_node: torch.fx.Node) -> str:
    """``L['self'].layers[0]._modules['attn']`` -> ``layers.0.attn``; "" at the top level."""
    stack = fx_node.meta.get("nn_module_stack") or fx_node.meta.get("fwd_nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    path = _ROOT.sub("", path.replace("L__self__.", ""))
    return _INDEX.sub(lambda m: "." + (m.group(1) or m.group(2) or m.group(3)), path).lstrip(".")


def hint_dims(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Symbol -> size this graph was compiled for (empty for a static graph)."""
    from torch._guards import detect_fake_mode

    vals = [n.meta.get("val") for n in gm.graph.nodes if n.op == "placeholder"]
    mode = detect_fake_mode([v for v in vals if isinstance(v, torch.Tensor)])
    env = getattr(mode, "shape_env", None)
    if env is None:
        return {}
    out: dict[str, int] = {}
    hints = getattr(env, "backed_var_to_val", None)
    if hints is None:  # torch before backed_var_to_val
        hints = env.var_to_val
    for sym, val in hints.items():
        try:
            out[str(sym)] = int(val)
        except (TypeError, ValueError):
            continue  # an unbacked (data-dependent) size has no hint; it stays unbound
    return out


def capture_fx(gm: torch.fx.GraphModule, *, name: str = "graph", weights: Collection[str] = (),
               parameters: Collection[str] = (), dims: Optional[Mapping[str, int]] = None,
               meta: Optional[Mapping[str, Any]] = None) -> Graph:
    """Capture an ATen-level GraphModule whose nodes carry ``meta["val"]``.

    `weights`: placeholder names that are parameters or buffers; `parameters`: those that are
    parameters (counted in ``parameter_count``). `dims` binds symbolic sizes; by default each
    symbol is bound to its hint. `meta` is merged into the graph's meta.
    """
    dims = {**hint_dims(gm), **dict(dims or {})}
    cap = FxNodeCapture(name, dims, module_path)
    weights, parameters = set(weights), set(parameters)
    param_count = 0
    for fx_node in gm.graph.nodes:
        if fx_node.op == "placeholder":
            val = fx_node.meta.get("val")
            if fx_node.name in parameters and isinstance(val, torch.Tensor):
                param_count += cap.type_of(val, fx_node.name).numel
            cap.placeholder(fx_node, "weight" if fx_node.name in weights else "input")
        elif fx_node.op == "call_function":
            cap.call(fx_node)
        elif fx_node.op == "output":
            cap.output(fx_node)
    return cap.graph({"frontend": "torch.compile", "parameter_count": int(param_count), "dims": dict(sorted(dims.items())),
                      **dict(meta or {})})
