"""Every user-facing error path of issue 17's message pass, rendered once: one line on stderr, exit 2, quotes
closed, no Python `None`, a sentence that ends, and a suggestion that is a real flag of the command."""

import re
from pathlib import Path

import pytest

from graphperf.cli import main
from graphperf.target import load_target

TINY = ["gpt2", "--config", "tiny", "--dtype", "float32"]


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    import torch

    path = tmp_path_factory.mktemp("m") / "lin.onnx"
    torch.onnx.export(torch.nn.Linear(4, 4), (torch.randn(1, 4),), str(path), dynamo=False)
    return str(path)


CASES = {
    "dtype": (["analyze", "gpt2", "--dtype", "bf16x"], r"got 'bf16x'$"),
    "phase": (["analyze", "gpt2", "--phase", "prefil"], r"no phase 'prefil'; phases: prefill, decode$"),
    "set without =": (["analyze", *TINY, "--set", "hbm_gbps"], r"e\.g\. --set hbm_gbps=4800$"),
    "set a name field": (["analyze", *TINY, "--set", "label=5"], r"label names the target and is not a figure"),
    "set a bad number": (["analyze", *TINY, "--set", "hbm_gbps=x"], r"cannot parse hbm_gbps='x': expected a number"),
    "set an unknown field": (["analyze", *TINY, "--set", "hbm_gbs=1"], r"did you mean 'hbm_gbps'"),
    "whatif two targets": (["whatif", *TINY, "--target", "h100,mi300x"],
                           r"whatif projects one target .* analyze MODEL --target h100,mi300x --format html"),
    "group matching nothing": (["whatif", *TINY, "--group", "nomatch*"], r"--group 'nomatch\*' matches no node"),
}


def _one_clean_line(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    line = err.strip()
    assert "Traceback" not in line and "None" not in line, line
    assert len(re.findall(r"(?<![a-z])'|'(?![a-z])", line)) % 2 == 0, f"unbalanced quotes: {line}"
    assert not re.search(r"\b1 \w+s\b", line.replace("1 thread", "")), line
    return line


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_error_is_one_clean_line(case, capsys):
    argv, pattern = CASES[case]
    assert main(argv) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert re.search(pattern, line), line


def test_an_output_equal_to_an_input_is_refused_and_the_input_kept(onnx_file, capsys):
    before = open(onnx_file, "rb").read()
    for argv in (["analyze", onnx_file, "-o", onnx_file], ["profile", onnx_file, "-o", onnx_file],
                 ["whatif", onnx_file, "-o", onnx_file]):
        assert main(argv) == 2, argv
        line = _one_clean_line(capsys.readouterr().err)
        assert f"-o {onnx_file} is an input of this command" in line
    assert open(onnx_file, "rb").read() == before


def test_a_model_passed_as_its_profile_gets_a_hint_that_overwrites_nothing(onnx_file, capsys):
    assert main(["correlate", onnx_file, "--profile", onnx_file, "--target", "host"]) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert "graphperf profile MODEL.onnx" in line and " -o " not in line


def test_set_with_several_targets_says_it_applies_to_each(tmp_path, capsys):
    out = tmp_path / "cmp.html"
    assert main(["analyze", *TINY, "--target", "h100,mi300x", "--set", "hbm_gbps=4000", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "--set hbm_gbps=4000 applies to every target (h100, mi300x)" in err
    assert out.read_text().count("hbm_gbps") >= 2  # each target section lists its overridden field


def test_calibrate_and_validate_refuse_to_overwrite_their_inputs(tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text(Path(load_target("h100").path).read_text())
    before = mine.read_text()
    assert main(["calibrate", "--fit", f"m.onnx={tmp_path / 'p.json'}", "--target", str(mine), "-o", str(mine)]) == 2
    assert f"-o {mine} is an input of this command" in _one_clean_line(capsys.readouterr().err)
    assert mine.read_text() == before
    ref = tmp_path / "measurements.json"
    ref.write_text("[]")
    assert main(["validate", "--reference", str(ref), "-o", str(ref)]) == 2
    assert f"-o {ref} is an input of this command" in _one_clean_line(capsys.readouterr().err)


def test_counts_agree_with_their_nouns(capsys):
    from graphperf.report.units import count_of

    assert [count_of(n, "group") for n in (0, 1, 2)] == ["0 groups", "1 group", "2 groups"]
    assert main(["whatif", *TINY, "--group", "add,layer_norm"]) == 0
    out = capsys.readouterr().out
    assert "1 group from" in out and "1 groups" not in out
