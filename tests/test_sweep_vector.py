"""The vectorized projection (graphperf/sweep/vector.py) equals `project` + `simulate` bit for bit on every
variant, across the kernel model and the roofline, graph and eager modes, and variants whose structure differs
(compute units, TF32 routing, a kernel model switched off)."""

import pytest

import graphperf
from graphperf.execution import simulate
from graphperf.passes import canonicalize
from graphperf.sweep import vector

FIELDS = ("latency_s", "device_s", "host_s", "idle_s", "kernels", "launch_bound")


def _variants(name):
    base = graphperf.load_target(name)
    out = [base.with_overrides(hbm_gbps=base.hbm_gbps * f, launch_overhead_us=base.launch_overhead_us * g,
                               matrix_efficiency=min(1.0, base.matrix_efficiency * f))
           for f in (0.5, 1.0, 1.7) for g in (0.5, 1.0)]
    if base.compute_units:
        out += [base.with_overrides(compute_units=base.compute_units // 2), base.with_overrides(allow_tf32=True)]
    if base.kernel_floor_us is not None:
        out.append(base.with_overrides(kernel_floor_us="none"))
    return out


@pytest.mark.parametrize("model,kw", [
    ("llama3-8b", dict(config="tiny", phase="decode", batch=4, kv_len=256)),
    ("gpt2", dict(config="tiny", dtype="float32", attention="eager")),
    ("resnet50", dict(config="tiny")),
])
@pytest.mark.parametrize("target", ["h200", "a100"])
@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_vectorized_equals_one_at_a_time(model, kw, target, mode):
    graph, _ = graphperf.load_graph(graphperf.ModelRequest(model, **kw))
    canon = canonicalize(graph).graph
    counts = graphperf.count(canon)
    ops = [nc.node.op.name for nc in counts]
    variants = _variants(target)
    plans = {}
    for t in variants:
        p = vector.plan(canon, counts, t)
        plans.setdefault(p.key, (p, []))[1].append(t)
    assert len(plans) >= (2 if target == "h200" else 1)  # structure changes get plans of their own
    for p, targets in plans.values():
        out = vector.evaluate(p, targets, mode)
        for j, t in enumerate(targets):
            want = simulate(graphperf.project(canon, counts, t), t, mode, ops).totals
            assert {f: out[f][j].item() for f in FIELDS} == {f: want[f] for f in FIELDS}
