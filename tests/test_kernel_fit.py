"""The kernel-model fit (graphperf/calibrate/kernel_fit.py) against synthetic measurements made by the model
itself with known parameters: the fit must recover them, and the sweep timer with them."""

import pytest

torch = pytest.importorskip("torch")

from graphperf.calibrate import kernel_fit as kf  # noqa: E402
from graphperf.count import count  # noqa: E402
from graphperf.target import load_target  # noqa: E402

TRUE = {"kernel_floor_us": 1.5, "kernel_floor_strided_us": 3.0, "memory_efficiency": 0.9,
        "memory_efficiency_strided": 0.4, "matrix_efficiency": 0.75, "matrix_floor_us": 4.0}
TIMER = kf.SweepTimer(offset_us=4.0, dirty_share=0.0)


def _graph(fn, *shapes, dtype=torch.bfloat16):
    from graphperf.api import capture
    from graphperf.passes import canonicalize

    class One(torch.nn.Module):
        def forward(self, *a):
            return fn(*a)

    return canonicalize(capture(One(), tuple(torch.empty(*s, dtype=dtype, device="meta") for s in shapes))).graph


def _rows(target, timer):
    F = torch.nn.functional
    cases = []
    for rows in (64, 4096, 65536):
        cases.append((f"add {rows}", "elementwise", _graph(lambda x: x + x, (rows, 1024))))
        cases.append((f"bias {rows}", "elementwise", _graph(lambda x, b: x * b, (rows, 1024), (1024,))))
    for m in (1, 256, 4096, 16384):
        cases.append((f"linear {m}", "gemm", _graph(F.linear, (m, 4096), (4096, 4096))))
    out = []
    for key, group, g in cases:  # each case as a sweep row (timer added) and as a trace row (kernel time only):
        for sweep in (True, False):  # the floors and the timer offset are told apart only by having both
            row = kf.KernelRow(key, group if sweep else "trace", g, tuple(count(g)), 1.0, sweep)
            out.append(kf.KernelRow(row.key + (" sweep" if sweep else ""), row.group, g, row.counts,
                                    kf.predict_s(row, target, timer), sweep))
    return out


def test_fit_recovers_known_parameters():
    truth = load_target("h200", {k: str(v) for k, v in TRUE.items()})
    rows = _rows(truth, TIMER)
    base = load_target("h200", {"kernel_floor_us": "1", "memory_efficiency": "0.7", "matrix_efficiency": "0.6"})
    out = kf.fit_kernel_model(rows, base, fields=list(TRUE))
    assert out.loss_after < 0.01 * out.loss_before
    for field, value in TRUE.items():
        assert out.fitted[field] == pytest.approx(value, rel=0.05), field
    assert out.timer.offset_us == pytest.approx(TIMER.offset_us, abs=0.3)
    errors = kf.errors_by_group(rows, out.target, out.timer)
    assert all(e["median_ape"] < 0.01 for e in errors.values())


def test_split_is_deterministic_and_holds_out_about_a_third():
    truth = load_target("h200", {k: str(v) for k, v in TRUE.items()})
    rows = _rows(truth, TIMER)
    a1, b1 = kf.split(rows)
    a2, b2 = kf.split(list(reversed(rows)))
    assert {r.key for r in b1} == {r.key for r in b2}
    assert len(a1) + len(b1) == len(rows) and b1 and a1


def test_relevant_fields_follow_the_rows():
    truth = load_target("h200", {k: str(v) for k, v in TRUE.items()})
    gemm_only = [r for r in _rows(truth, TIMER) if r.group == "gemm"]
    fields = kf._relevant(gemm_only)
    assert "matrix_efficiency" in fields and "memory_efficiency_strided" not in fields
    assert "misaligned_matrix_factor" not in fields  # every GEMM here is aligned: nothing informs the factor
    assert "misaligned_matrix_factor" in kf._relevant(
        [kf.KernelRow("head", "gemm", g := _graph(torch.nn.functional.linear, (64, 768), (50257, 768)),
                      tuple(count(g)), 1e-3, False)])


def test_a_default_fit_leaves_fields_no_row_informs_at_the_base_value():
    """Without `fields`, the fit takes only what the rows inform (a flat loss would drift to a bound)."""
    truth = load_target("h200", {k: str(v) for k, v in TRUE.items()})
    rows = [r for r in _rows(truth, TIMER) if r.group == "gemm"]
    base = load_target("h200")
    out = kf.fit_kernel_model(rows, base)
    assert set(out.fitted) == kf._relevant(rows)
    assert out.target.misaligned_matrix_factor == base.misaligned_matrix_factor
    assert out.target.memory_efficiency_strided == base.memory_efficiency_strided
