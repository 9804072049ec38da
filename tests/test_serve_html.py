"""The serve page (graphperf/serve/html.py): the figures of `ServeResult.to_dict()` on one self-contained page,
and ``graphperf serve ... -o page.html``."""

from __future__ import annotations

from click.testing import CliRunner

from graphperf.cli import cli

TINY = dict(batch=2, input_len=32, output_len=8, config="tiny")


def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "page.html"
    args = ["serve", "llama3-8b", "--config", "tiny", "--tp", "2", "--batch", "2", "--input-len", "32",
            "--output-len", "8", "-o", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "llama3-8b" in text
