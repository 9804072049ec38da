"""The Hugging Face corpus (tests/corpus.py) through torch.export, graphperf's capture path: every
architecture analyses with coverage 1.0, its matrix FLOPs equal FlopCounterMode's for an eager run under
the math SDPA backend, and its .pt2 file analyses from the command line with exit 0.

FlopCounterMode counts causal attention in full and graphperf halves it (README); the comparison doubles
our causal attention back, with the helpers of test_flopcounter_oracle.py. With the math backend
FlopCounterMode sees attention as bmm, so the totals are compared, and convolutions on their own. MoE
models run their experts eagerly for the oracle (`set_experts_implementation("eager")`: a loop of
linears over the routed tokens, which FlopCounterMode sees), while the graph holds the grouped matmul
that torch.export records (`transformers::grouped_mm_fallback`): two implementations, one count.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager

import pytest
import torch

import graphperf
from graphperf.capture.torch_export import capture_exported
from graphperf.cli import main
from tests import corpus
from tests.e2e.test_flopcounter_oracle import flopcounter_flops, matrix_flops_by_family

pytestmark = pytest.mark.slow


@functools.lru_cache(maxsize=None)
def _graph(name: str):
    return capture_exported(corpus.exported(name), name=name)


def test_the_corpus_spans_the_families():
    kinds = Counter(arch.kind for arch in corpus.ARCHITECTURES.values())
    assert len(corpus.names()) >= 20
    assert kinds["decoder"] >= 8 and kinds["moe"] >= 1 and kinds["encoder"] >= 2
    assert kinds["encoder-decoder"] >= 1 and kinds["vision"] >= 2 and kinds["convnet"] >= 1 and kinds["speech"] >= 1


@pytest.mark.parametrize("name", corpus.names())
def test_every_node_is_counted(name):
    report = graphperf.analyze(_graph(name), target="h100")
    assert report.totals["unknown_ops"] == {}
    assert report.totals["coverage"] == 1.0


@contextmanager
def _eager_experts(module):
    """MoE experts as a loop of linears (what FlopCounterMode can see), restored afterwards."""
    impl = getattr(module.config, "_experts_implementation", None)
    if impl is None or impl == "eager":
        yield
        return
    module.set_experts_implementation("eager")
    try:
        yield
    finally:
        module.set_experts_implementation(impl)


@pytest.mark.parametrize("name", corpus.names())
def test_matrix_flops_equal_flopcountermode_under_math_sdpa(name):
    module, inputs = corpus.build(name)
    ours, causal = matrix_flops_by_family(_graph(name))
    with _eager_experts(module):
        oracle = flopcounter_flops(module, (), inputs, math_sdpa=True)
    assert ours.get("conv", 0) == oracle.get("conv", 0)
    assert sum(ours.values()) == sum(oracle.values()), (ours, causal, oracle)
    assert sum(ours.values()) > 0


def _save(tmp_path, name: str) -> str:
    path = str(tmp_path / f"{name}.pt2")
    torch.export.save(corpus.exported(name), path)
    return path


@pytest.mark.parametrize("name", ["llama", "falcon", "t5", "resnet", "whisper"])
def test_pt2_files_analyse_with_exit_0(capsys, tmp_path, name):
    # in this process transformers is imported: its output classes and custom ops are registered
    code = main(["analyze", _save(tmp_path, name), "--target", "h100", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["totals"]["coverage"] == 1.0


def _graphperf(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphperf", *argv], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_a_fresh_process_needs_import_transformers_and_says_so(tmp_path):
    # a new interpreter has neither transformers' output classes (pytree) nor its MoE custom op
    dense, moe = _save(tmp_path, "llama"), _save(tmp_path, "mixtral")
    for path, names in ((dense, "transformers.modeling_outputs"), (moe, "transformers::grouped_mm_fallback")):
        done = _graphperf("analyze", path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert names in done.stderr and "--import transformers" in done.stderr
    done = _graphperf("analyze", moe, "--import", "transformers", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["coverage"] == 1.0
