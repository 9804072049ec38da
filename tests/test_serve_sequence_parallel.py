"""graphperf serve --sp: sequence parallelism (passes/sequence_parallel.py) in every step of a generation, on the
tiny llama config, checked against the tensor-parallel run and the ring formulas."""

import pytest
from click.testing import CliRunner

from graphperf.cli import cli
from graphperf.errors import UsageError
from graphperf.serve import serve
from graphperf.target import load_target

RUN = dict(config="tiny", input_len=16, output_len=5)
HIDDEN, ITEMSIZE = 64, 2  # llama3-8b tiny, bf16


@pytest.fixture(scope="module")
def pair():
    return {sp: serve("llama3-8b", "h100", tp=2, sp=sp, batch=4, **RUN) for sp in (False, True)}


def test_each_all_reduce_becomes_a_reduce_scatter_and_an_all_gather_of_the_same_bytes(pair):
    tp_only, sp = pair[False], pair[True]
    assert [c["op"] for c in tp_only.collectives_per_layer] == ["all_reduce", "all_reduce"]
    assert [c["op"] for c in sp.collectives_per_layer] == ["all_gather", "reduce_scatter"] * 2
    h100 = load_target("h100")
    s = 4 * 1 * HIDDEN * ITEMSIZE  # a decode step: the batch's one token each, hidden wide
    for c in sp.collectives_per_layer:  # ring: p-1 steps, (p-1)/p of the full activation on the wire
        assert c["payload_bytes"] == s and c["wire_bytes"] == pytest.approx(s / 2)
        assert c["time_s"] == pytest.approx(h100.scale_up_latency_us * 1e-6
                                            + s / 2 / (h100.scale_up_gbps * 1e9 * h100.scale_up_efficiency))
    # a reduce_scatter + an all_gather take the ring all_reduce's steps and bytes
    assert sum(c["time_s"] for c in sp.collectives_per_layer) == pytest.approx(
        sum(c["time_s"] for c in tp_only.collectives_per_layer))


def test_weights_and_kv_cache_are_unchanged_and_the_activation_peak_is_lower(pair):
    tp_only, sp = pair[False], pair[True]
    assert sp.memory["weights_bytes"] == tp_only.memory["weights_bytes"]
    assert sp.memory["kv_cache_bytes"] == tp_only.memory["kv_cache_bytes"]
    assert sp.memory["activations_bytes"] < tp_only.memory["activations_bytes"]
    assert sp.settings["sp"] is True and any(n.startswith("sequence parallel over tp 2") for n in sp.notes)
    assert "kept tensor-parallel" not in sp.notes[-1]


def test_a_decode_whose_tokens_do_not_divide_keeps_the_tensor_parallel_graph():
    r = serve("llama3-8b", "h100", tp=2, sp=True, batch=3, **RUN)  # decode: 3 tokens over 2 devices
    assert [c["op"] for c in r.collectives_per_layer] == ["all_reduce", "all_reduce"]
    assert "the decode kept tensor-parallel" in r.notes[-1] and "the prefill" not in r.notes[-1]
    assert r.prefill["breakdown"]["collective_s"] > 0


def test_sp_needs_tp():
    with pytest.raises(UsageError, match="--sp splits the tokens over the tensor-parallel devices") as info:
        serve("llama3-8b", "h100", tp=1, sp=True, batch=2, **RUN)
    assert "\n" not in str(info.value)


def test_cli_sp():
    out = CliRunner().invoke(cli, ["serve", "llama3-8b", "--target", "h100", "--tp", "2", "--sp", "--batch", "2",
                                   "--input-len", "16", "--output-len", "3", "--config", "tiny"])
    assert out.exit_code == 0, out.output
    assert "tp 2, pp 1, sp" in out.output and "reduce_scatter after" in out.output
    assert "all_gather before layers.0.attn.q_proj" in out.output  # the gather runs before its first reader


def test_with_micro_batches_the_notes_and_collectives_are_the_projected_micro_batchs():
    """batch 5 in 3 micro-batches of 2: the full batch's decode (5 tokens) would not split over tp 2, the
    micro-batch's (2 tokens) does, and that is the graph projected and reported."""
    r = serve("llama3-8b", "h100", tp=2, pp=2, micro_batches=3, sp=True, batch=5, **RUN)
    assert r.settings["micro_batch_size"] == 2
    assert [c["op"] for c in r.collectives_per_layer] == ["all_gather", "reduce_scatter"] * 2
    assert "kept tensor-parallel" not in r.notes[-1]
