"""The HTML roofline draws the roofs the projection used (issue 16): every node's matrix work ran at its
`graphperf.peaks.PeakUsed` (peak x the efficiency of its op family: matmul, conv or attention), and the chart has
an achievable roof at exactly that rate, labelled with the efficiency field it came from."""

import pytest

import graphperf
from graphperf.report.html import ceilings


@pytest.mark.parametrize("model,target,dtype,families", [
    ("resnet50", "h200", "bfloat16", {"conv"}),               # matrix_efficiency_conv
    ("gpt2", "h200", "bfloat16", {"matmul", "attention"}),    # matrix_efficiency, matrix_efficiency_attention
    ("gpt2", "h100", "float32", {"matmul"}),  # no TF32: the vector unit runs the matmuls at the matrix efficiency
])
def test_each_node_sits_under_the_roof_it_was_projected_with(model, target, dtype, families):
    report = graphperf.analyze(model, config="tiny", dtype=dtype, target=target)
    t = report.target
    roofs = {(c.flops_per_s, c.efficiency): c for c in ceilings(report) if c.derated}
    used = [r for r in report.nodes if r.matrix_flops]
    assert used
    for r in used:
        family = r.peak.family
        assert r.peak.efficiency == t.matrix_efficiency_for(family)
        roof = roofs.get((r.peak.rate_flops, t.matrix_efficiency_for(family)))
        assert roof is not None, (r.name, family, sorted(roofs))
        assert r.peak.efficiency_field in roof.detail
    assert {r.peak.family for r in used} >= families
