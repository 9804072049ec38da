"""`graphperf train`: the table, the JSON (graphperf.train/1) and one-line usage errors (exit 2)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from graphperf.cli import cli, main

ARGS = ["train", "gpt2", "--config", "tiny", "--dtype", "fp32", "--dp", "4", "--batch", "2", "--seq", "16"]


def test_cli_table_and_json(tmp_path):
    runner = CliRunner()
    table = runner.invoke(cli, [*ARGS, "--bucket-mb", "0.05"])
    assert table.exit_code == 0, table.output
    assert "training step on 4 x H100" in table.output or "training step on 4 x" in table.output
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
