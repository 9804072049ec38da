"""-o FILE: the format follows the file's extension unless --format says otherwise (and a contradiction is refused),
HTML is never printed to a terminal, and a report written to a file is announced on stderr (issue 17)."""

import json

import pytest

from graphperf import cli, cli_args
from graphperf.cli import main

TINY = ["gpt2", "--config", "tiny", "--dtype", "float32"]


@pytest.mark.parametrize("command", ["analyze", "whatif"])
@pytest.mark.parametrize("ext,check", [
    (".html", lambda text: text.startswith("<!DOCTYPE html>")),
    (".json", lambda text: isinstance(json.loads(text), dict)),
])
def test_the_extension_picks_the_format(tmp_path, capsys, command, ext, check):
    out = tmp_path / f"r{ext}"
    assert main([command, *TINY, "-o", str(out)]) == 0
    assert check(out.read_text())
    err = capsys.readouterr().err
    assert f"wrote {out} ({ext[1:]})" in err


def test_analyze_csv_by_extension_and_table_for_other_names(tmp_path, capsys):
    csv, txt = tmp_path / "r.csv", tmp_path / "r.txt"
    assert main(["analyze", *TINY, "-o", str(csv)]) == 0
    assert csv.read_text().splitlines()[0].startswith("name,")
    assert main(["analyze", *TINY, "-o", str(txt)]) == 0
    assert "projected latency" in txt.read_text() and f"wrote {txt} (table)" in capsys.readouterr().err


def test_an_explicit_format_that_contradicts_the_extension_is_refused(tmp_path, capsys):
    code = main(["analyze", *TINY, "--format", "table", "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "--format html" in err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("command", ["analyze", "whatif"])
def test_html_is_not_printed_to_a_terminal(monkeypatch, capsys, command):
    monkeypatch.setattr(cli_args, "stdout_is_terminal", lambda: True)
    code = main([command, *TINY, "--format", "html"])
    out, err = capsys.readouterr()
    assert code == 2 and "-o FILE.html" in err and err.count("\n") == 1 and "<html" not in out
