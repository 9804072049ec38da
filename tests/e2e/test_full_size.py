"""Full-size workloads analyse on meta tensors on a 24 GB machine, without materialising weights."""

from __future__ import annotations

import json

import pytest

from graphperf import models
from graphperf.cli import main


@pytest.mark.slow
def test_llama3_405b_decode_analyses_from_the_cli(capsys):
    code = main(["analyze", "llama3-405b", "--phase", "decode", "--target", "h100", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    spec = models.get_model("llama3-405b")
    cfg = spec.configs["full"]
    totals = doc["totals"]
    assert totals["coverage"] == 1.0
    assert totals["parameters"] == sum(p.numel() for p in models.build("llama3-405b").module.parameters())
    # decode at batch 1 reads every weight once: bytes moved cannot be below the bf16 weight bytes
    # (minus the embedding table, of which decode gathers a single row).
    embedding_bytes = cfg.vocab_size * cfg.hidden_size * 2
    assert totals["bytes_read"] >= totals["weight_bytes"] - embedding_bytes
    # and it is memory bound: the projected time is at least the weight bytes at the peak bandwidth.
    assert totals["latency_s"] >= (totals["weight_bytes"] - embedding_bytes) / (doc["target"]["hbm_gbps"] * 1e9)
    assert totals["latency_by_bound_s"].get("memory", 0) > 0.9 * totals["latency_s"]
