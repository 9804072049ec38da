"""The README's CLI examples stay true: every example parses with the real CLI, and the cheap
ones (files, tiny configs, listings) run and exit 0."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from graphperf.cli import cli, main

README = Path(__file__).resolve().parents[2] / "README.md"


def _examples() -> list[list[str]]:
    lines = []
    for block in re.findall(r"```\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            if line.startswith("graphperf "):
                lines.append(shlex.split(line.split("#")[0])[1:])
    return lines


def test_readme_has_examples_for_every_command():
    commands = {args[0] for args in _examples()}
    assert {"analyze", "targets", "models"} <= commands


@pytest.mark.parametrize("args", _examples(), ids=lambda a: " ".join(a))
def test_every_example_parses(args):
    with cli.make_context("graphperf", list(args)) as ctx:
        sub = cli.get_command(ctx, args[0])
        sub.make_context(args[0], list(args[1:]), parent=ctx)


@pytest.mark.slow
def test_file_examples_run(tmp_path, monkeypatch, capsys):
    recipe = re.search(r'^python -c "(.*)"$', README.read_text(), flags=re.M).group(1)
    subprocess.run([sys.executable, "-c", recipe], cwd=tmp_path, check=True, capture_output=True)
    repo = README.parent
    (tmp_path / "graphperf").mkdir()
    (tmp_path / "graphperf" / "targets").symlink_to(repo / "graphperf" / "targets")
    monkeypatch.chdir(tmp_path)
    runnable = [a for a in _examples() if any(x.endswith((".onnx", ".pt2")) for x in a) or "tiny" in a
                or a[0] in ("targets", "models")]
    assert len(runnable) >= 5
    for args in runnable:
        args = [a for a in args]
        if "-o" in args:
            args[args.index("-o") + 1] = str(tmp_path / "report.out")
        code = main(args)
        err = capsys.readouterr().err
        assert code == 0, (args, err)
