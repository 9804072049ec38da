"""Dtype spellings: one table (graphperf.dtypes.SPELLINGS) serves --dtype, --precision and the API's dtype=."""

from __future__ import annotations

import json

import pytest

import graphperf
from graphperf import models
from graphperf.cli import main
from graphperf.dtypes import DTYPE_BITS, SPELLINGS, dtype_name
from graphperf.passes.precision import DTYPE_ALIASES, parse_precision

SHORT = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


@pytest.mark.parametrize("spelling, name", [*SHORT.items(), ("BF16", "bfloat16"), ("bfloat16", "bfloat16"),
                                            ("float16", "float16"), ("float32", "float32")])
def test_spellings_resolve_to_canonical_names(spelling, name):
    assert dtype_name(spelling) == name


def test_every_spelling_names_a_canonical_dtype_and_precision_uses_the_same_table():
    assert set(SPELLINGS.values()) <= set(DTYPE_BITS)
    assert DTYPE_ALIASES is SPELLINGS
    assert parse_precision("weights=half,activations=float") == {"weights": "float16", "activations": "float32"}
    with pytest.raises(KeyError):
        dtype_name("int9")


@pytest.mark.parametrize("spelling", sorted(SHORT))
def test_workloads_take_every_spelling(spelling):
    wl = models.build("gpt2", config="tiny", dtype=spelling, device="meta")
    assert wl.dtype == SHORT[spelling]


def test_api_and_cli_take_short_spellings(capsys):
    report = graphperf.analyze("gpt2", config="tiny", seq=16, dtype="bf16", target="h100")
    assert report.model["description"].endswith("bfloat16")
    assert main(["analyze", "gpt2", "--config", "tiny", "--seq", "16", "--dtype", "half", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["description"].endswith("float16")


def test_a_bad_dtype_is_a_usage_error_listing_the_spellings(capsys):
    assert main(["analyze", "gpt2", "--config", "tiny", "--dtype", "int9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bf16" in err and "half" in err
