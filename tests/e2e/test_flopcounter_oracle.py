"""Whole-model check against torch.utils.flop_counter.FlopCounterMode, the independent oracle.

For every workload and phase at its tiny config, our matrix FLOPs per op family (matmul,
convolution, attention) equal FlopCounterMode's, measured by running the model eagerly. Stock
FlopCounterMode has no formula for the CPU SDPA kernel, so the oracle registers one (the
standard 2*B*H*L*S*(E+Ev)); FlopCounterMode counts causal attention in full while graphperf
halves it (README convention), so causal attention is compared at twice our figure and the
halving is pinned on its own.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from graphperf.count import count
from tests.conftest import tiny_graph, tiny_workload, workload_cases

aten = torch.ops.aten


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    b, h, l, e = query_shape
    s, ev = key_shape[-2], value_shape[-1]
    return 2 * b * h * l * s * e + 2 * b * h * l * s * ev


_FAMILY = {
    aten.mm: "matmul", aten.addmm: "matmul", aten.bmm: "matmul", aten.baddbmm: "matmul", aten._grouped_mm: "matmul",
    aten.convolution: "conv", aten._convolution: "conv",
    aten._scaled_dot_product_flash_attention_for_cpu: "attention",
    aten._scaled_dot_product_efficient_attention: "attention",
    aten._scaled_dot_product_flash_attention: "attention",
}


def oracle_flops(name: str, phase: str | None) -> dict[str, int]:
    wl = tiny_workload(name, phase)
    return flopcounter_flops(wl.module, wl.args)


def flopcounter_flops(module, args=(), kwargs=None, *, math_sdpa: bool = False) -> dict[str, int]:
    """FlopCounterMode's FLOPs per family for one eager run of `module`. With `math_sdpa`, attention runs
    the math SDPA backend, whose matmuls FlopCounterMode counts as bmm (family "matmul")."""
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel

    mode = FlopCounterMode(display=False, custom_mapping={
        aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops})
    with mode, torch.no_grad(), sdpa_kernel(SDPBackend.MATH) if math_sdpa else nullcontext():
        module(*args, **(kwargs or {}))
    out: dict[str, int] = {}
    for op, flops in mode.get_flop_counts()["Global"].items():
        family = _FAMILY.get(op)
        assert family is not None, f"FlopCounterMode counted {op}, which this oracle does not map"
        out[family] = out.get(family, 0) + int(flops)
    return out


def graphperf_flops(name: str, phase: str | None) -> tuple[dict[str, int], int]:
    return matrix_flops_by_family(tiny_graph(name, phase))


def matrix_flops_by_family(graph) -> tuple[dict[str, int], int]:
    """Matrix FLOPs per family with causal attention doubled back to FlopCounterMode's convention,
    and the causal attention matrix FLOPs as we count them."""
    out: dict[str, int] = {}
    causal = 0
    for nc in count(graph):
        if nc.cost is None or not nc.cost.matrix_flops:
            continue
        family = "attention" if nc.node.op.name == "attention" else (
            "matmul" if nc.node.op.name in ("matmul", "einsum", "grouped_matmul") else nc.node.op.name)
        flops = nc.cost.matrix_flops
        if nc.node.op.name == "attention" and nc.node.attrs.get("is_causal"):
            causal += flops
            flops *= 2
        out[family] = out.get(family, 0) + flops
    return out, causal


@pytest.mark.parametrize("name,phase", workload_cases())
def test_matrix_flops_equal_flopcountermode(name, phase):
    ours, _ = graphperf_flops(name, phase)
    assert ours == oracle_flops(name, phase)


def test_causal_attention_is_half_of_flopcountermode():
    ours, causal = graphperf_flops("llama3-8b", "prefill")
    oracle = oracle_flops("llama3-8b", "prefill")
    assert causal > 0
    assert causal * 2 == oracle["attention"]
