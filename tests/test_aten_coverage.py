"""ATen coverage from torch's own metadata: every op of the core ATen opset (``torch.Tag.core``) and every op
tagged ``torch.Tag.pointwise`` has a cost rule, a registered free status, no tensor result, or a reasoned
exclusion; in-place and out= variants cost what their functional op costs; the ops transformers models
leave in a torch.export graph are counted."""

from __future__ import annotations

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from graphperf.capture.aten_coverage import EXCLUDED, Coverage, aten_overloads, coverage_of
from graphperf.capture.aten_ops import alias_for, functional_overload
from graphperf.capture.aten_pointwise import COSTS, SAME_AS, default_cost
from graphperf.capture.fx_graph import capture_fx
from graphperf.capture.torch_export import capture_module
from graphperf.count import count

aten = torch.ops.aten


def _enumerate(tag) -> list:
    """Every ATen overload torch tags with `tag`, read from torch at test time."""
    out = []
    for name in dir(aten):
        packet = getattr(aten, name)
        if isinstance(packet, torch._ops.OpOverloadPacket):
            out += [getattr(packet, o) for o in packet.overloads() if tag in getattr(packet, o).tags]
    return out


CORE = _enumerate(torch.Tag.core)
POINTWISE = _enumerate(torch.Tag.pointwise)


def test_the_op_sets_are_what_torch_tags():
    assert len(CORE) > 150 and len(POINTWISE) > 400  # torch 2.13: 191 core, 536 pointwise overloads
    assert aten.mm.default in CORE and aten.add.Tensor in POINTWISE


@pytest.mark.parametrize("opset, ops", [("core", CORE), ("pointwise", POINTWISE)])
def test_every_op_has_a_rule_a_free_status_or_a_reasoned_exclusion(opset, ops):
    unknown = sorted(f"{op} ({detail})" for op in ops for status, detail in [coverage_of(op)]
                     if status is Coverage.UNKNOWN)
    assert unknown == [], f"{len(unknown)} {opset} ops without a rule: add a rule, or an exclusion with a reason"


def test_exclusions_are_few_reasoned_and_name_real_core_ops():
    assert len(EXCLUDED) <= 10
    tagged = {op.overloadpacket for op in CORE + POINTWISE}
    for packet, reason in EXCLUDED.items():
        assert packet in tagged, f"{packet} is excluded but no longer in the core or pointwise set"
        assert reason and "\n" not in reason and len(reason) < 120


def _variants():
    """(variant, functional) for every in-place overload and every out= overload of a core/pointwise op."""
    tagged = set(CORE + POINTWISE)
    pairs = []
    for op in aten_overloads():
        functional = functional_overload(op)
        if functional is not op and functional in tagged:
            pairs.append((op, functional))
        elif any(a.is_out for a in op._schema.arguments) and op.overloadpacket in {t.overloadpacket for t in tagged}:
            pairs.append((op, op))
    return pairs


VARIANTS = _variants()


def test_in_place_and_out_variants_cost_as_their_functional_op():
    assert len(VARIANTS) > 300
    wrong = []
    for variant, functional in VARIANTS:
        got, want = coverage_of(variant), coverage_of(functional)
        if want[0] in (Coverage.RULE, Coverage.FREE) and got != want:
            wrong.append(f"{variant}: {got} vs {functional}: {want}")
    assert wrong == []
    assert functional_overload(aten.relu_.default) is aten.relu.default
    assert functional_overload(aten.add_.Tensor) is aten.add.Tensor
    assert functional_overload(aten.__iand__.Tensor) is aten.__and__.Tensor
    assert functional_overload(aten.index_put_.default) is aten.index_put.default


# The non-core ops torch.export leaves in transformers models, and what each is counted as.
NON_CORE = {
    aten.diff.default: "pointwise", aten.cumsum.default: "cumsum", aten.scatter.src: "scatter",
    aten.scatter_add.default: "scatter", aten.scatter_reduce.two: "scatter", aten.index_put.default: "scatter",
    aten.index_put_.default: "scatter", aten.masked_fill.Scalar: "masked_fill", aten.masked_fill_.Scalar: "masked_fill",
    aten.where.self: "where", aten.topk.default: "topk", aten.sort.default: "sort", aten.nonzero.default: "nonzero",
    aten.one_hot.default: "one_hot", aten.__and__.Tensor: "bitwise_and", aten.__or__.Tensor: "bitwise_or",
    aten.einsum.default: "einsum", aten.histc.default: "reduce_sum", aten._grouped_mm.default: "grouped_matmul",
    aten.new_ones.default: "fill", aten.full.default: "fill", aten.arange.start: "fill", aten.zeros.default: "fill",
    aten.empty.memory_format: "view", aten.add_.Tensor: "add", aten.relu_.default: "relu", aten.div_.Tensor: "div",
    aten.mul_.Tensor: "mul", aten.lerp.Scalar: "pointwise", aten.clip.default: "clamp",
}


@pytest.mark.parametrize("op, canonical_op", NON_CORE.items(), ids=[str(o) for o in NON_CORE])
def test_ops_of_real_models_map_where_the_readme_says(op, canonical_op):
    assert alias_for(op).op == canonical_op
    assert coverage_of(op)[0] in (Coverage.RULE, Coverage.FREE)


def test_generic_pointwise_costs_come_from_the_table_or_arity():
    assert set(SAME_AS).isdisjoint(COSTS)
    assert default_cost(aten.copysign.Tensor) == (1, 0)        # binary: one op
    assert default_cost(aten.where.self) == (2, 0)             # ternary: two
    assert default_cost(aten.add.out) == (1, 0)                # out= is not an operand
    x, y = torch.randn(6, 5), torch.randn(6, 5)
    nodes = _counted(lambda a, b: (torch.lerp(a, b, 0.5), torch.log10(a.abs()), torch.copysign(a, b)), x, y)
    lerp, log10, copysign = (nodes[n] for n in ("lerp", "log10", "copysign"))
    assert (lerp.flops, lerp.transcendentals) == (3 * 30, 0)        # a + w * (b - a)
    assert (log10.flops, log10.transcendentals) == (30, 30)         # log(x) / ln 10
    assert (copysign.flops, copysign.transcendentals) == (30, 0)


def _counted(fn, *args) -> dict:
    """Node name -> cost of `fn` traced by make_fx (ATen ops as called, in-place and out= kept)."""
    graph = capture_fx(make_fx(fn, tracing_mode="fake")(*args))
    counts = count(graph)
    assert all(nc.cost is not None for nc in counts), [nc.reason for nc in counts if nc.cost is None]
    return {nc.node.name: nc.cost for nc in counts}


def test_an_out_variant_reads_its_operands_not_its_out_argument():
    def f(a, b, c):
        torch.add(a, b, out=c)
        return c

    a, b, c = torch.randn(8, 4), torch.randn(4), torch.randn(8, 4)
    out_form = _counted(f, a, b, c)["add"]
    functional = _counted(lambda a, b: torch.add(a, b), a, b)["add"]
    assert out_form == functional
    assert out_form.bytes_read == 4 * (8 * 4 + 4)


class _InPlace(torch.nn.Module):
    """What transformers' mask code and torchvision's resnet write: in-place ops, bool operators, diff."""

    def forward(self, x, ids):
        h = torch.nn.functional.linear(x, torch.ones(16, 16))
        h.relu_()
        h.add_(1.0).mul_(2.0)
        mask = (ids > 0) & (ids < 100) | (ids == 7)
        steps = torch.diff(ids, dim=-1)
        h = h.masked_fill(~mask[..., None], 0.0)
        counts = torch.histc(h, bins=4, min=0, max=4)
        return h.cumsum(-1), steps, counts, torch.nn.functional.one_hot(ids % 5, 5)


def test_a_module_with_in_place_ops_and_bool_operators_is_fully_counted():
    x, ids = torch.randn(2, 8, 16), torch.randint(0, 200, (2, 8))
    graph = capture_module(_InPlace(), (x, ids), name="inplace")
    counts = count(graph)
    assert [nc.node.source_op for nc in counts if nc.cost is None] == []
    by_source = {nc.node.source_op: nc for nc in counts}
    relu = by_source["aten.relu_.default"]
    assert relu.node.op.name == "relu" and relu.cost.flops == 2 * 8 * 16
    assert by_source["aten.__and__.Tensor"].node.op.name == "bitwise_and"
    assert by_source["aten.diff.default"].cost.flops == 2 * 7   # one sub per output element


def test_resampling_and_ffts_use_the_sampling_and_spectral_rules():
    from graphperf.rules.sampling import flops_per_sample
    from graphperf.rules.spectral import fft_flops

    def f(x, s):
        up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
        near = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        return up, near, torch.fft.rfft(s, dim=-1), torch.fft.fft2(s.to(torch.complex64))

    x, sig = torch.randn(1, 3, 4, 4), torch.randn(2, 3, 16)
    graph = capture_fx(make_fx(f, tracing_mode="fake")(x, sig))
    counts = {nc.node.source_op: nc for nc in count(graph)}
    assert all(nc.cost is not None for nc in counts.values())
    bilinear = counts["aten.upsample_bilinear2d.default"]
    assert bilinear.node.attrs == {"mode": "linear", "spatial": 2}
    assert bilinear.cost.flops == 3 * 8 * 8 * flops_per_sample("linear", 2)
    assert counts["aten.upsample_nearest2d.default"].node.attrs == {"mode": "nearest", "spatial": 2}
    assert counts["aten._fft_r2c.default"].cost.flops == 2 * 3 * fft_flops(16, real=True)
    assert counts["aten._fft_c2c.default"].cost.flops == 2 * fft_flops(3 * 16, real=False)
