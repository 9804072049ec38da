"""The vectorized projection (graphperf/sweep/vector.py) equals `project` + `simulate` bit for bit on every
variant, across the kernel model and the roofline, graph and eager modes, and variants whose structure differs
(compute units, TF32 routing, a kernel model switched off); and the rates `Variants` gives from arrays of swept
values equal, variant by variant, the rates of one `Target.with_overrides` each."""

import numpy as np
import pytest

import graphperf
from graphperf.execution import simulate
from graphperf.passes import canonicalize
from graphperf.execution import host_costs
from graphperf.kernel_time import kernel_params
from graphperf.peaks import matrix_peak, vector_rate
from graphperf.sweep import vector
from graphperf.target import _SCALARS

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
        fixed = tuple(getattr(t, f) if typ is not float else getattr(t, f) is None for f, (typ, _, _) in _SCALARS.items()
                      if f not in ("name", "label", "notes"))  # what a sweep holds fixed within one group
        plans.setdefault((p.key, fixed), (p, []))[1].append(t)
    assert len(plans) >= (2 if target == "h200" else 1)  # structure changes get plans of their own
    for p, targets in plans.values():
        out = vector.evaluate(p, vector.variants_of(targets), mode)
        for j, t in enumerate(targets):
            want = simulate(graphperf.project(canon, counts, t), t, mode, ops).totals
            assert {f: out[f][j].item() for f in FIELDS} == {f: want[f] for f in FIELDS}


#: Float fields a sweep varies as arrays, with a range of values each may take.
SWEPT = {"hbm_gbps": (500.0, 9000.0), "memory_efficiency": (0.3, 1.0), "memory_efficiency_strided": (0.2, 1.0),
         "memory_efficiency_row": (0.2, 1.0), "matrix_bf16_tflops": (100.0, 5000.0), "matrix_fp8_tflops": (200.0, 9000.0),
         "vector_fp32_tflops": (10.0, 200.0), "matrix_efficiency": (0.2, 1.0), "matrix_efficiency_attention": (0.2, 1.0),
         "vector_efficiency": (0.2, 1.0), "launch_overhead_us": (0.1, 10.0), "host_eager_us": (1.0, 30.0),
         "host_eager_library_us": (1.0, 40.0), "kernel_floor_us": (0.5, 5.0), "kernel_floor_row_us": (0.5, 8.0),
         "matrix_floor_us": (0.5, 8.0), "misaligned_matrix_factor": (0.1, 1.0), "memory_gb": (10.0, 300.0)}


@pytest.mark.parametrize("target", ["h100", "h200", "a100", "tpu-v5e"])
@pytest.mark.parametrize("seed", [0, 1])
def test_columnar_rates_equal_each_targets_rates(target, seed):
    """Random values of random fields (integers and fractions, as a spec gives them): every rate the projection
    reads, computed once on the arrays, equals the rate of each variant's own Target bit for bit."""
    rng = np.random.default_rng(seed)
    base = graphperf.load_target(target)
    fields = [f for f in SWEPT if rng.random() < 0.6 or f == "hbm_gbps"]
    n = 64
    raw = {f: [int(x) if rng.random() < 0.3 and SWEPT[f][0] >= 1 else float(x) for x in rng.uniform(*SWEPT[f], n)]
           for f in fields}
    variants = vector.Variants(base, {f: np.array(v, dtype=np.float64) for f, v in raw.items()}, n)
    targets = [base.with_overrides(**{f: raw[f][i] for f in fields}) for i in range(n)]
    keys = [(d, fam) for d in ("bfloat16", "float8_e4m3fn", "float32") for fam in ("matmul", "attention", "conv")]

    def rates(t):
        params = kernel_params(t)
        out = {f"matrix {k}": matrix_peak(t, *k).rate_flops for k in keys}
        out |= {f"vector {d}": vector_rate(t, d) for d in ("bfloat16", "float32")}
        out |= {f"host {mode} {i}": h for mode in ("graph", "eager", "compiled")
                for i, h in enumerate(host_costs(t, mode))}
        out |= {"hbm": t.hbm_bytes_per_s * t.memory_efficiency, "gap": t.launch_overhead_us * 1e-6}
        if params is not None:
            out |= {c: getattr(params, f"{c}_bytes_per_s") for c in ("stream", "strided", "row")}
            out |= {f"floor {c}": s for c, s in params.floor_s.items()}
            out |= {"matrix floor": params.matrix_floor_s, "misaligned": params.misaligned_factor}
        return out

    columnar = rates(variants)
    for i, t in enumerate(targets):
        want = rates(t)
        got = {k: (np.broadcast_to(v, n)[i].item()) for k, v in columnar.items()}
        assert got == want, [k for k in want if got[k] != want[k]]
