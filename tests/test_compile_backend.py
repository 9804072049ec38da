"""torch.compile(backend="graphperf"): found without importing graphperf, never changes what runs,
one report per graph (graph breaks, recompilations), training steps against FlopCounterMode."""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

import graphperf
from graphperf import models as workloads
from graphperf.compile_backend import COMPILE_SCHEMA, clear_reports
from graphperf.report.model import SCHEMA
from tests.conftest import tiny_graph, workload_cases

aten = torch.ops.aten
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh():
    torch._dynamo.reset()
    clear_reports()
    yield
    torch._dynamo.reset()


# -- models --------------------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, d_in=16, hidden=32, d_out=8):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_in, hidden), nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)).relu())


class Block(nn.Module):
    """Embedding, pre-LN attention and MLP, LM head: the ops of a transformer training step."""

    def __init__(self, vocab=50, d=32, heads=4, causal=False, dropout=0.0):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.emb, self.ln1, self.ln2 = nn.Embedding(vocab, d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.fc2, self.head = nn.Linear(d, 4 * d), nn.Linear(4 * d, d), nn.Linear(d, vocab)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids):
        x = self.emb(ids)
        b, length, d = x.shape
        q, k, v = (t.view(b, length, self.heads, d // self.heads).transpose(1, 2)
                   for t in self.qkv(self.ln1(x)).split(d, -1))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, length, d)))
        return self.head(x + self.fc2(F.silu(self.fc(self.ln2(x)))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.fc = nn.Conv2d(8, 8, 3, stride=2), nn.Linear(8, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        x = F.adaptive_avg_pool2d(torch.tanh(self.conv2(x)), 1).flatten(1)
        return self.fc(torch.sigmoid(x))


def _lm_loss(model, ids, target):
    out = model(ids)
    return out, F.cross_entropy(out.flatten(0, 1), target.flatten())


def _mse_loss(model, x, target):
    out = model(x)
    return out, F.mse_loss(out, target)


def _step(loss_fn, model, inputs, compile_it=False, **options):
    """One training step (forward, loss, backward); with `compile_it`, forward and loss compiled."""
    fn = functools.partial(loss_fn, model)
    out, loss = (_compiled(fn, **options) if compile_it else fn)(*inputs)
    loss.backward()
    return out, loss


def _cases():
    torch.manual_seed(0)
    ids, target = torch.randint(0, 50, (2, 8)), torch.randint(0, 50, (2, 8))
    return {
        "mlp": (MLP, _mse_loss, (torch.randn(4, 16), torch.randn(4, 8))),
        "transformer": (Block, _lm_loss, (ids, target)),
        "transformer-causal": (lambda: Block(causal=True), _lm_loss, (ids, target)),
        "convnet": (ConvNet, _mse_loss, (torch.randn(2, 3, 8, 8), torch.randn(2, 10))),
    }


def _compiled(model, **options):
    return torch.compile(model, backend="graphperf", options={"report": "none", **options})


# -- the oracle: FlopCounterMode over the eager step --------------------------------------------

_FAMILY = {aten.mm: "matmul", aten.addmm: "matmul", aten.bmm: "matmul", aten.convolution: "conv",
           aten.convolution_backward: "conv", aten._scaled_dot_product_flash_attention_for_cpu: "attention",
           aten._scaled_dot_product_flash_attention_for_cpu_backward: "attention"}
_OURS = {"matmul": "matmul", "conv": "conv", "conv_backward": "conv", "attention": "attention",
         "attention_backward": "attention"}


def oracle_step_flops(loss_fn, model, inputs) -> dict[str, int]:
    # stock FlopCounterMode has no CPU SDPA formulas: register torch's own sdpa (backward) counts
    mode = FlopCounterMode(display=False, custom_mapping={
        aten._scaled_dot_product_flash_attention_for_cpu:
            lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(q, k, v),
        aten._scaled_dot_product_flash_attention_for_cpu_backward:
            lambda g, q, k, v, *a, out_shape=None, **kw: sdpa_backward_flop_count(g, q, k, v)})
    with mode:
        _step(loss_fn, model, inputs)
    out: dict[str, int] = {}
    for op, flops in mode.get_flop_counts()["Global"].items():
        out[_FAMILY[op]] = out.get(_FAMILY[op], 0) + int(flops)
    return out


def ours_step_flops(reports, causal_full=False) -> dict[str, int]:
    """Matrix FLOPs per family over the forward and backward reports (causal attention doubled
    back to FlopCounterMode's full count when `causal_full`)."""
    out: dict[str, int] = {}
    for report in reports:
        for node in report.nodes:
            if node.matrix_flops:
                flops = node.matrix_flops * (2 if causal_full and node.op.startswith("attention") else 1)
                out[_OURS[node.op]] = out.get(_OURS[node.op], 0) + flops
    return out


@pytest.mark.parametrize("name", ["mlp", "transformer", "transformer-causal", "convnet"])
def test_training_step_matrix_flops_equal_flopcountermode_and_nothing_changes(name):
    factory, loss_fn, inputs = _cases()[name]
    torch.manual_seed(1)
    eager = factory().train()
    compiled_model = factory().train()
    compiled_model.load_state_dict(eager.state_dict())
    oracle = oracle_step_flops(loss_fn, eager, inputs)
    out, loss = _step(loss_fn, compiled_model, inputs, compile_it=True)
    reports = graphperf.last_reports()
    assert [g.kind for g in reports] == ["forward", "backward"]
    for g in reports:
        assert g.report.totals["coverage"] == 1.0, g.report.totals["unknown_ops"]
    ours = ours_step_flops(reports.reports(), causal_full=name.endswith("causal"))
    assert ours == oracle
    if name.endswith("causal"):  # the README convention: causal attention counts half of the full work
        half = ours_step_flops(reports.reports())
        assert half["attention"] * 2 == oracle["attention"]
    # nothing changes: the same ATen ops ran, so outputs, loss and gradients are bit-identical
    eager.zero_grad()
    out_e, loss_e = _step(loss_fn, eager, inputs)
    assert torch.equal(out, out_e) and torch.equal(loss, loss_e)
    for (pname, p), q in zip(eager.named_parameters(), compiled_model.parameters()):
        assert torch.equal(p.grad, q.grad), pname


@pytest.mark.slow
@pytest.mark.parametrize("name,phase", workload_cases())
def test_every_workload_training_step_matches_flopcountermode(name, phase):
    from graphperf.count import count

    def loss_fn(*args):  # forward and loss, compiled together; a sum of squares of every float output
        leaves = torch.utils._pytree.tree_leaves(wl.module(*args))
        return sum(t.float().pow(2).mean() for t in leaves if t.is_floating_point())

    wl = workloads.build(name, config="tiny", phase=phase, dtype="float32", device="cpu")
    causal = any(nc.node.attrs.get("is_causal") for nc in count(tiny_graph(name, phase)))
    oracle = oracle_step_flops(lambda model, *a: (None, loss_fn(*a)), wl.module, wl.args)
    _compiled(loss_fn)(*wl.args).backward()
    reports = graphperf.last_reports()
    assert [g.kind for g in reports] == ["forward", "backward"]
    assert all(r.totals["coverage"] == 1.0 for r in reports.reports()), [r.totals["unknown_ops"] for r in reports.reports()]
    assert ours_step_flops(reports.reports(), causal_full=causal) == oracle


def test_training_backward_is_about_twice_the_forward():
    # every matmul's backward is two matmuls of its size (grad input, grad weight); the first
    # layer's input needs no gradient, so its backward is one matmul: bw = 2 * fw - fc1's matmul
    _step(_mse_loss, MLP(), (torch.randn(4, 16), torch.randn(4, 8)), compile_it=True)
    fw, bw = (graphperf.last_reports().reports(k)[0].totals["matrix_flops"] for k in ("forward", "backward"))
    assert bw == 2 * fw - 2 * 4 * 16 * 32


def test_dropout_and_batchnorm_training_graphs_are_fully_covered():
    _step(_lm_loss, Block(dropout=0.1).train(), _cases()["transformer"][2], compile_it=True)
    kinds = {g.kind: g.report for g in graphperf.last_reports()}
    assert kinds["forward"].totals["coverage"] == kinds["backward"].totals["coverage"] == 1.0
    assert {r["name"] for r in kinds["forward"].by_op} >= {"dropout_train", "nll_loss", "gather", "attention"}
    assert {r["name"] for r in kinds["backward"].by_op} >= {"nll_loss_backward", "softmax_backward"}
    assert {r["name"] for r in kinds["backward"].by_op} >= {"dropout_backward", "embedding_backward",
                                                            "attention_backward", "layer_norm_backward"}


# -- inference, options, reports -----------------------------------------------------------------


def test_inference_graph_matches_analyze_and_output_file_is_a_report(tmp_path):
    model, x = MLP().eval(), torch.randn(4, 16)
    path = tmp_path / "report.json"
    with torch.no_grad():
        out = _compiled(model, output=str(path), target="a100")(x)
        assert torch.equal(out, model(x))
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA and doc["target"]["name"] == "a100"
    assert doc["model"]["kind"] == "inference" and doc["model"]["frontend"] == "torch.compile"
    expected = graphperf.analyze(model, (x,), target="a100").totals
    for key in ("flops", "matrix_flops", "transcendentals", "weight_bytes", "parameters"):
        assert doc["totals"][key] == expected[key], key
    assert doc["totals"]["matrix_flops"] == 2 * 4 * 16 * 32 + 2 * 4 * 32 * 8


def test_graph_breaks_give_one_report_per_graph_and_a_combined_total(tmp_path):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(16, 32), nn.Linear(32, 8)

        def forward(self, x):
            x = self.a(x)
            torch._dynamo.graph_break()
            return self.b(x)

    path = tmp_path / "graphs.json"
    with torch.no_grad():
        _compiled(Broken(), output=str(path))(torch.randn(4, 16))
    reports = graphperf.last_reports()
    assert len(reports) == 2 and [g.graph for g in reports] == [0, 1]
    assert [g.report.totals["matrix_flops"] for g in reports] == [2 * 4 * 16 * 32, 2 * 4 * 32 * 8]
    doc = json.loads(path.read_text())
    assert doc["schema"] == COMPILE_SCHEMA and len(doc["graphs"]) == 2
    assert all(g["report"]["schema"] == SCHEMA for g in doc["graphs"])
    assert doc["totals"]["flops"] == sum(g["report"]["totals"]["flops"] for g in doc["graphs"])
    assert doc["totals"]["weight_bytes"] == 4 * (16 * 32 + 32 + 32 * 8 + 8)  # every weight once
    assert doc["totals"]["graphs"] == 2 and doc["totals"]["recompilations"] == 0


def test_recompilations_are_reported_with_their_shapes():
    compiled_model = torch.compile(MLP().eval(), backend="graphperf", dynamic=False, options={"report": "none"})
    with torch.no_grad():
        for batch in (4, 6):
            compiled_model(torch.randn(batch, 16))
    reports = graphperf.last_reports()
    assert [g.recompile for g in reports] == [False, True]
    assert reports[1].compile_id.endswith("/1") and reports.recompilations == 1
    assert [g.report.totals["matrix_flops"] for g in reports] == [2 * b * (16 * 32 + 32 * 8) for b in (4, 6)]


def test_dynamic_graphs_are_projected_at_the_sizes_they_were_compiled_for():
    compiled_model = torch.compile(MLP().eval(), backend="graphperf", dynamic=True, options={"report": "none"})
    with torch.no_grad():
        compiled_model(torch.randn(5, 16))
    report = graphperf.last_reports()[0].report
    assert sorted(report.model["dims"].values()) == [5, 16]  # dynamic=True: batch and width are symbols
    assert report.totals["matrix_flops"] == 2 * 5 * (16 * 32 + 32 * 8)


def test_report_modes_print_or_log(capsys, caplog):
    x = torch.randn(4, 16)
    with torch.no_grad(), caplog.at_level(logging.INFO, logger="graphperf"):
        _compiled(MLP())(x)
        assert capsys.readouterr().out == ""
        assert "graph 0 inference" in caplog.text and "coverage 100.0%" in caplog.text
        torch._dynamo.reset()
        _compiled(MLP(), report="json")(x)
        assert json.loads(capsys.readouterr().out)["schema"] == SCHEMA
        torch._dynamo.reset()
        _compiled(MLP(), report="table", name="tiny-mlp")(x)
        out = capsys.readouterr().out
        assert "tiny-mlp inference graph 0" in out and "projected latency" in out


def test_reports_are_kept_per_compile_call():
    a, b = _compiled(MLP(), name="a"), _compiled(MLP(), name="b")
    with torch.no_grad():
        a(torch.randn(4, 16))
        assert graphperf.last_reports()[0].report.model["name"].startswith("a ")
        b(torch.randn(4, 16))
        assert graphperf.last_reports()[0].report.model["name"].startswith("b ")
    assert len(graphperf.last_reports()) == 1


def test_target_overrides_apply():
    with torch.no_grad():
        _compiled(MLP(), target="a100", set={"hbm_gbps": 1000})(torch.randn(4, 16))
    target = graphperf.last_reports()[0].report.target
    assert (target.name, target.hbm_gbps, target.overridden) == ("a100", 1000.0, ("hbm_gbps",))


@pytest.mark.parametrize("path,expected", [
    ("L['self'].layers[0]._modules['attn']", "layers.0.attn"), ("L['model'].fc1", "fc1"), ("L['self']", ""),
    ("L['self'].blocks.3.mlp", "blocks.3.mlp"), ("G['net'].head", "head")])
def test_module_paths_are_plain_dotted_paths(path, expected):
    from graphperf.capture.fx_graph import module_path

    node = types.SimpleNamespace(meta={"nn_module_stack": {"k": (path, nn.Module)}})
    assert module_path(node) == expected
    assert module_path(types.SimpleNamespace(meta={"fwd_nn_module_stack": {"k": (path, nn.Module)}})) == expected


def test_bad_options_fail_the_compile_with_the_reason():
    for options, reason in (({"colour": "red"}, "unknown option"), ({"then": "tvm"}, "then='tvm'"),
                            ({"target": "h1000"}, "unknown target")):
        torch._dynamo.reset()
        with pytest.raises(Exception, match=reason):
            torch.compile(MLP(), backend="graphperf", options=options)(torch.randn(2, 16))


def test_an_analysis_failure_never_stops_the_model(monkeypatch, caplog):
    import graphperf.capture.fx_graph as fx_graph

    def broken(*args, **kwargs):
        raise RuntimeError("capture exploded")

    monkeypatch.setattr(fx_graph, "capture_fx", broken)
    model, x = MLP(), torch.randn(4, 16)
    with caplog.at_level(logging.WARNING, logger="graphperf"):
        out, loss = _step(_mse_loss, model, (x, torch.zeros(4, 8)), compile_it=True)
    assert torch.equal(out, model(x))
    reports = graphperf.last_reports()
    assert [g.error for g in reports] == ["RuntimeError: capture exploded"] * 2 and reports.reports() == []
    assert "runs unchanged" in caplog.text


def test_an_unwritable_output_is_a_warning(tmp_path, caplog):
    model, x = MLP(), torch.randn(4, 16)
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger="graphperf"):
        assert torch.equal(_compiled(model, output=str(tmp_path / "missing" / "r.json"))(x), model(x))
    assert "cannot report graph 0 inference" in caplog.text and graphperf.last_reports()[0].report is not None


@pytest.mark.slow
def test_then_inductor_computes_what_eager_computes():
    # inductor compiles C++ for the CPU: 13 s with a cold inductor cache on the 2-core development machine
    start = time.perf_counter()
    model, x = MLP(), torch.randn(4, 16)
    compiled_model = _compiled(model, then="inductor")
    with torch.no_grad():
        torch.testing.assert_close(compiled_model(x), model(x))
    out = compiled_model(x)
    out.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)
    kinds = [g.kind for g in graphperf.last_reports()]
    assert kinds == ["inference", "forward", "backward"] or kinds == ["forward", "backward"], kinds
    assert time.perf_counter() - start < 300


# -- no import needed: the entry point ------------------------------------------------------------


def _run_fresh(script: str, tmp_path) -> str:
    """Run `script` in a fresh interpreter that never imports graphperf itself."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_backend_is_found_without_importing_graphperf(tmp_path):
    out = _run_fresh("""
        import sys, torch
        m = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8)).eval()
        x = torch.randn(4, 16)
        assert "graphperf" not in sys.modules
        with torch.no_grad():
            y = torch.compile(m, backend="graphperf", options={"report": "none", "output": "r.json"})(x)
            assert torch.equal(y, m(x))
        print("ok")
        """, tmp_path)
    assert out.strip() == "ok"
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["totals"]["matrix_flops"] == 2 * 4 * 16 * 32 + 2 * 4 * 32 * 8


@pytest.mark.slow
def test_every_workload_compiles_in_a_fresh_process_and_matches_analyze(tmp_path):
    out = _run_fresh(f"""
        import json, sys, torch
        sys.path.insert(0, {str(ROOT)!r})
        import models  # the workloads' source (graphperf.models), imported without graphperf
        assert "graphperf" not in sys.modules
        for spec in models.list_models():
            for phase in spec.phases:
                torch._dynamo.reset()
                wl = models.build(spec.name, config="tiny", phase=phase, dtype="float32", device="cpu")
                path = f"{{spec.name}}-{{phase}}.json"
                with torch.no_grad():
                    got = torch.compile(wl.module, backend="graphperf",
                                        options={{"report": "none", "output": path}})(*wl.args)
                    want = wl.module(*wl.args)
                for a, b in zip(*(torch.utils._pytree.tree_leaves(t) for t in (got, want))):
                    assert torch.equal(a, b), (spec.name, phase)
                print(spec.name, phase, path)
        """, tmp_path)
    lines = [line.split() for line in out.splitlines()]
    assert len(lines) == sum(len(spec.phases) for spec in workloads.list_models())
    for name, phase, path in lines:
        doc = json.loads((tmp_path / path).read_text())
        assert doc["totals"]["coverage"] == 1.0, (name, phase, doc["totals"]["unknown_ops"])
        expected = graphperf.analyze(name, config="tiny", phase=phase, dtype="float32").totals
        for key in ("flops", "matrix_flops"):  # the acceptance bound; measured: equal
            assert doc["totals"][key] == pytest.approx(expected[key], rel=0.01), (name, phase, key)
        # aot_autograd graphs keep some layout copies torch.export folds into views (measured: 0.96-1.01x)
        assert doc["totals"]["bytes"] == pytest.approx(expected["bytes"], rel=0.05), (name, phase)


def test_a_recompilation_replaces_its_frame_in_the_step_totals(tmp_path):
    path = tmp_path / "graphs.json"
    compiled_model = torch.compile(MLP().eval(), backend="graphperf", dynamic=False,
                                   options={"report": "none", "output": str(path)})
    with torch.no_grad():
        for batch in (4, 6):
            compiled_model(torch.randn(batch, 16))
    reports = graphperf.last_reports()
    per_batch = {b: 2 * b * (16 * 32 + 32 * 8) for b in (4, 6)}
    assert reports.totals["matrix_flops"] == per_batch[6]  # the step at the latest shapes, not 4 + 6
    assert reports.totals["step_compile_ids"] == [reports[1].compile_id]
    assert reports.totals["graphs_not_in_step"] == 1
    by_id = reports.by_compile_id()
    assert [t["matrix_flops"] for t in by_id.values()] == [per_batch[4], per_batch[6]]
    doc = json.loads(path.read_text())
    assert doc["totals"]["matrix_flops"] == per_batch[6]
    assert doc["totals_by_compile_id"][reports[0].compile_id]["matrix_flops"] == per_batch[4]


def test_peak_activation_is_one_definition_across_compile_and_analyze():
    """A transposed weight before a GEMM (aot_autograd's t + addmm) is a view of weight memory, not an
    activation: the compiled MLP's peak equals analyze's, the relu's input and output live together."""
    model, x = MLP().eval(), torch.randn(16, 16)
    with torch.no_grad():
        torch.compile(model, backend="graphperf", options={"report": "none"})(x)
    compiled = graphperf.last_reports()[0].report.totals["peak_activation_bytes"]
    analyzed = graphperf.analyze(model, (x,), target="h100").totals["peak_activation_bytes"]
    assert compiled == analyzed == 2 * 16 * 32 * 4
