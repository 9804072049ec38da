"""Absurd workload shapes (graphperf/pipeline.py MAX_BATCH, MAX_INPUT_NUMEL) are refused through the CLI before
anything is built or traced: exit 2 and one line naming the flag and the limit, no traceback."""

from __future__ import annotations

from graphperf.cli import main
from graphperf.pipeline import MAX_BATCH, MAX_INPUT_NUMEL


def _refused(capsys, *argv):
    code = main(["analyze", *argv])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_batch_above_the_limit_is_refused(capsys):
    assert MAX_BATCH == 2**20
    err = _refused(capsys, "llama3-8b", "--batch", "100000000000")
    assert "--batch 100000000000" in err and "1,048,576" in err and "2**20" in err
    assert "--batch" in _refused(capsys, "gpt2", "--config", "tiny", "--batch", str(MAX_BATCH + 1))


def test_an_input_above_2_40_elements_is_refused(capsys):
    # decode KV cache of one layer: batch * kv_heads * kv_len * head_dim = 2**20 * 8 * 8192 * 128 = 2**43
    assert MAX_INPUT_NUMEL == 2**40
    err = _refused(capsys, "llama3-8b", "--phase", "decode", "--batch", str(MAX_BATCH), "--kv-len", "8192")
    assert "--batch 1048576, --kv-len 8192" in err and "[1048576, 8, 8192, 128]" in err and "2**40" in err
