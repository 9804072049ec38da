"""`graphperf train`: the table, the JSON (graphperf.train/1) and one-line usage errors (exit 2)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from graphperf.cli import cli, main
from graphperf.errors import UsageError
from graphperf.passes.data_parallel import bucket_caps

ARGS = ["train", "gpt2", "--config", "tiny", "--dtype", "fp32", "--dp", "4", "--batch", "2", "--seq", "16"]


def test_cli_table_and_json(tmp_path):
    runner = CliRunner()
    table = runner.invoke(cli, [*ARGS, "--bucket-mb", "0.05"])
    assert table.exit_code == 0, table.output
    assert "training step on 4 x h100  (data parallel" in table.output  # the target's name, as bundled
    assert "exposed comm" in table.output and "ready after" in table.output and "per device" in table.output
    path = tmp_path / "train.json"
    out = runner.invoke(cli, [*ARGS, "-o", str(path)])
    assert out.exit_code == 0, out.output
    d = json.loads(path.read_text())
    assert d["schema"] == "graphperf.train/1" and d["settings"]["global_batch"] == 8
    t = d["totals"]
    for key in ("forward_s", "backward_s", "optimizer_s", "allreduce_s", "exposed_comm_s", "step_s", "tokens_per_s"):
        assert isinstance(t[key], float) and t[key] >= 0
    assert t["tokens_per_s"] == 4 * 2 * 16 / t["step_s"]
    assert d["buckets"] and all({"parameters", "bytes", "ready_after"} <= set(b) for b in d["buckets"])
    no_opt = json.loads(runner.invoke(cli, [*ARGS, "--no-optimizer", "--format", "json"]).output)
    assert "optimizer_s" not in no_opt["totals"]


def test_cli_user_errors_are_one_line_exit_2(capsys):
    for args, what in ((["--bucket-mb", "0"], "--bucket-mb 0"), (["--dp", "0"], "--dp"),
                       (["--mode", "compiled"], "--mode"), (["--seq", "4096"], "exceeds")):
        assert main([*ARGS, *args]) == 2, args
        err = capsys.readouterr().err
        assert what in err and err.count("\n") == 1, err
    assert main(["train", "no-such-model", "--config", "tiny"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_what_the_model_or_a_number_refuses_is_one_line_exit_2(capsys):
    """resnet50's BatchNorm refuses one value per channel in training (batch 1), a traceback before; an infinite
    bucket cap overflowed converting MiB to bytes."""
    for args, what in ((["train", "resnet50", "--config", "tiny"], "Expected more than 1 value per channel"),
                       ([*ARGS, "--bucket-mb", "inf"], "--bucket-mb inf"),
                       ([*ARGS, "--bucket-mb", "nan"], "--bucket-mb nan")):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert what in err and err.count("\n") == 1 and "Traceback" not in err, err
    with pytest.raises(UsageError, match="finite"):
        bucket_caps(float("inf"))


def test_an_extension_train_does_not_write_is_refused(tmp_path, capsys):
    """train writes table and json: -o x.html (or .csv) is refused in one line, nothing written (it wrote the
    table into x.html before)."""
    for name in ("x.html", "x.csv"):
        path = tmp_path / name
        assert main([*ARGS, "-o", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"extension says {name.split('.')[1]}" in err and "*.txt or *.json" in err and err.count("\n") == 1
        assert not path.exists()


def test_a_missing_link_names_its_own_fields(capsys):
    """16 A100s span two nodes: the scale-out link, which a100.toml lacks; the hint names its fields, not scale_up."""
    for zero in ("0", "1"):
        assert main(["train", "gpt2", "--config", "tiny", "--target", "a100", "--dp", "16", "--zero", zero]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "scale_up" not in err, err
        for field in ("scale_out_gbps", "scale_out_latency_us", "scale_out_efficiency"):
            assert f"--set {field}=" in err, err


def test_ddp_notes_point_to_zero():
    """DDP's notes no longer list ZeRO / FSDP as not modelled: they say what DDP replicates and point to --zero."""
    runner = CliRunner()
    d = json.loads(runner.invoke(cli, [*ARGS, "--format", "json"]).output)
    assert not any("ZeRO / FSDP" in n and "not modelled" in n for n in d["notes"])
    assert any("--zero 1, 2 or 3 shards them" in n for n in d["notes"])
