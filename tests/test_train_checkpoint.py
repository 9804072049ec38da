"""Activation checkpointing in `graphperf train` (graphperf/train/checkpoint.py): llama3-8b tiny (2 decoder layers,
hidden 64, vocabulary 128, bf16) at batch 2, seq 16. The oracles are written here: the layers' nodes are read off
the forward report by the model's structure (each decoder layer starts with its input RMSNorm's ``pow``; two norms
per layer, the final norm's ``pow`` ends the last layer), the saved bytes as a closed form of the config.
"""

from __future__ import annotations

import json

import pytest

from graphperf.cli import main
from graphperf.models import build
from graphperf.passes import canonicalize
from graphperf.pipeline import analyze_graph
from graphperf.target import load_target
from graphperf.train import train
from graphperf.train.capture import capture_training_step
from graphperf.train.checkpoint import checkpoint_plan, layer_spans, parse_checkpointing

H100 = load_target("h100")
B, T = 2, 16
KW = dict(config="tiny", batch=B, seq=T)


@pytest.fixture(scope="module")
def runs():
    return {ac: train("llama3-8b", H100, dp=1, activation_checkpointing=ac, **KW) for ac in ("none", "full", "every=2")}


def shape():
    """(layers, hidden, vocab, itemsize) of the tiny config, read off the meta module's parameters."""
    m = build("llama3-8b", config="tiny", device="meta").module
    names = [n for n, _ in m.named_parameters()]
    layers = len({n.split(".")[1] for n in names if n.startswith("layers.")})
    vocab, hidden = dict(m.named_parameters())["embed_tokens.weight"].shape
    return layers, hidden, vocab, 2


def layer_seconds():
    """Each decoder layer's projected forward device time, from the forward report: layer k runs from the (2k)-th
    ``pow`` (its input RMSNorm) to before the (2k+2)-th (the next layer's, or the final norm's)."""
    step = capture_training_step("llama3-8b", "tiny", B, T)
    fw = canonicalize(step.forward).graph
    report = analyze_graph(fw, H100, {"name": "fw"})
    pows = [i for i, n in enumerate(fw.nodes) if n.op.name == "pow"]
    layers = shape()[0]
    assert len(pows) == 2 * layers + 1
    device = [r.device_s or 0.0 for r in report.nodes]
    return [sum(device[pows[2 * k]:pows[2 * k + 2]]) for k in range(layers)]


def test_full_recomputes_every_layers_forward(runs):
    per_layer = layer_seconds()
    t = runs["full"].totals
    assert t["recomputed_layers"] == t["layers"] == len(per_layer) == 2
    assert t["recompute_s"] == pytest.approx(sum(per_layer), rel=1e-12)
    # dp 1: nothing to overlap, so the backward grows by exactly the recomputation
    assert t["backward_s"] == pytest.approx(runs["none"].totals["backward_s"] + sum(per_layer), rel=1e-12)
    assert t["forward_s"] == runs["none"].totals["forward_s"]
    assert t["step_s"] == pytest.approx(runs["none"].totals["step_s"] + sum(per_layer), rel=1e-12)


def test_every_2_recomputes_one_layer_in_two(runs):
    per_layer = layer_seconds()
    t = runs["every=2"].totals
    assert (t["recomputed_layers"], t["layers"]) == (1, 2)
    assert t["recompute_s"] == pytest.approx(per_layer[1], rel=1e-12)  # torchtitan counts from 1: layers 2, 4, ...
    assert t["recompute_s"] == pytest.approx(runs["full"].totals["recompute_s"] / 2, rel=1e-9)


def test_saved_activations_shrink_to_the_layer_inputs_and_the_rest(runs):
    layers, hidden, vocab, item = shape()
    tokens = B * T * 8  # int64 input ids, and the labels (also int64)
    layer_inputs = layers * B * T * hidden * item  # the embedding's output and layer 0's output
    final_norm = B * T * hidden * item + B * T * item + B * T * hidden * item  # its input, rsqrt, normed output
    loss = B * T * vocab * 4 + 4 + 4  # fp32 log-softmax, nll's total weight, the loss's gradient (tangent)
    m = runs["full"].memory
    assert m["saved_activations_bytes"] == 2 * tokens + layer_inputs + final_norm + loss
    none = runs["none"].memory
    assert none["saved_activations_bytes"] - m["saved_activations_bytes"] == m["recomputed_activations_bytes"]
    per_layer = [sum(_backward(B, T).values[v].type.nbytes for v in d) for d in _plan(1, B, T).dropped]
    assert sum(per_layer) == m["recomputed_activations_bytes"]
    assert runs["every=2"].memory["saved_activations_bytes"] == none["saved_activations_bytes"] - per_layer[1]


def test_the_backward_holds_one_recomputed_layer_at_a_time():
    """At batch 4 x seq 256 the activations outweigh the tiny model's gradients: the backward's peak drops by all
    the layers' dropped activations but one layer's (live again while that layer's backward runs)."""
    b, t = 4, 256
    m = {ac: train("llama3-8b", H100, config="tiny", batch=b, seq=t, activation_checkpointing=ac).memory
         for ac in ("none", "full")}
    per_layer = [sum(_backward(b, t).values[v].type.nbytes for v in d) for d in _plan(1, b, t).dropped]
    none, full = m["none"]["backward_peak_activation_bytes"], m["full"]["backward_peak_activation_bytes"]
    assert full <= none - sum(per_layer) + max(per_layer)
    assert full >= max(per_layer)  # one layer's activations are live again
    assert m["full"]["forward_peak_activation_bytes"] < m["none"]["forward_peak_activation_bytes"]


def _backward(b, t):
    return canonicalize(capture_training_step("llama3-8b", "tiny", b, t).backward).graph


def _plan(every, b=B, t=T):
    step = capture_training_step("llama3-8b", "tiny", b, t)
    return checkpoint_plan(canonicalize(step.forward).graph, canonicalize(step.backward).graph, every)


def test_layer_spans_start_at_the_residual_stream():
    step = capture_training_step("llama3-8b", "tiny", B, T)
    fw = canonicalize(step.forward).graph
    spans = layer_spans(fw)
    pows = [n.name for n in fw.nodes if n.op.name == "pow"]
    assert [s.unit for s in spans] == ["layers.0", "layers.1"]
    assert [s.nodes[0] for s in spans] == pows[0:4:2]
    _, hidden, _, item = shape()
    assert [sum(fw.values[v].type.nbytes for v in s.inputs) for s in spans] == [B * T * hidden * item] * 2


def test_none_is_todays_output():
    a = train("llama3-8b", H100, dp=4, zero=3, **KW).to_dict()
    b = train("llama3-8b", H100, dp=4, zero=3, activation_checkpointing="none", **KW).to_dict()
    assert json.dumps(a) == json.dumps(b)
    assert "recompute_s" not in a["totals"] and "activation_checkpointing" not in a["settings"]
    assert any("activation checkpointing" in n for n in a["notes"])


def test_fsdp_gathers_no_more_with_checkpointing():
    none = train("llama3-8b", H100, dp=4, zero=3, **KW)
    full = train("llama3-8b", H100, dp=4, zero=3, activation_checkpointing="full", **KW)
    assert full.sharding["collectives"] == none.sharding["collectives"]
    t = full.totals
    assert t["backward_compute_s"] == pytest.approx(none.totals["backward_compute_s"] + t["recompute_s"], rel=1e-12)
    assert full.settings["activation_checkpointing"] == "full"


@pytest.mark.parametrize("bad", ["every=0", "foo", "every=x", "every=-1"])
def test_a_bad_value_is_a_one_line_error(bad, capsys):
    rc = main(["train", "llama3-8b", "--config", "tiny", "--activation-checkpointing", bad])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--activation-checkpointing" in err


def test_parse():
    assert [parse_checkpointing(v) for v in (None, "none", "full", "every=1", "every=3")] == [0, 0, 1, 1, 3]


def test_cli_table_shows_the_recomputation(capsys):
    assert main(["train", "llama3-8b", "--config", "tiny", "--batch", "2", "--seq", "16",
                 "--activation-checkpointing", "full"]) == 0
    out = capsys.readouterr().out
    assert "incl. recompute" in out and "2/2 layers" in out


def test_the_recomputation_delays_the_gradients_ready_times():
    """DDP over 2 devices with small buckets: each bucket is ready later by the recomputations run before its last
    gradient: none, the last layer's (recomputed first), or both layers' (the embedding's bucket, last)."""
    kw = dict(dp=2, bucket_cap_mb=0.02, **KW)
    none, full = train("llama3-8b", H100, **kw), train("llama3-8b", H100, activation_checkpointing="full", **kw)
    per_layer = layer_seconds()
    allowed = [0.0, per_layer[1], per_layer[0] + per_layer[1]]
    shifts = [f["ready_s"] - n["ready_s"] for n, f in zip(none.buckets, full.buckets)]
    assert len(shifts) > 2 and [b["parameters"] for b in none.buckets] == [b["parameters"] for b in full.buckets]
    for s in shifts:
        assert min(abs(s - a) for a in allowed) < 1e-12
    assert all(b >= a - 1e-15 for a, b in zip(shifts, shifts[1:])) and shifts[-1] == pytest.approx(sum(per_layer), rel=1e-9)
    assert full.totals["backward_s"] > none.totals["backward_s"]
