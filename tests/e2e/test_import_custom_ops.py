"""`--import MODULE` / `import_modules=`: a .pt2 that calls a custom op loads once the library registering
the op is imported, and says in one line which op and which option when it is not.

The library is a small module written into tmp_path (acme_ops: `acme::frob`); each check runs in a fresh
interpreter, where the op is registered only if something imports acme_ops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

LIBRARY = textwrap.dedent('''
    import torch

    @torch.library.custom_op("acme::frob", mutates_args=())
    def frob(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @frob.register_fake
    def _(x):
        return torch.empty_like(x)
''')

EXPORT = textwrap.dedent('''
    import sys
    import torch
    import acme_ops  # noqa: F401

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(16, 8)

        def forward(self, x):
            return torch.ops.acme.frob(self.fc(x))

    torch.export.save(torch.export.export(M(), (torch.randn(4, 16),)), sys.argv[1])
''')


@pytest.fixture(scope="module")
def acme_pt2(tmp_path_factory):
    root = tmp_path_factory.mktemp("acme")
    (root / "acme_ops.py").write_text(LIBRARY)
    path = root / "acme.pt2"
    subprocess.run([sys.executable, "-c", EXPORT, str(path)], check=True, env=_env(root))
    return root, path


def _env(root):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


def _graphperf(root, *argv):
    return subprocess.run([sys.executable, "-m", "graphperf", *argv], capture_output=True, text=True, env=_env(root))


def test_an_unregistered_custom_op_is_one_line_naming_the_op_and_the_option(acme_pt2):
    root, path = acme_pt2
    for command in (["analyze", str(path)], ["whatif", str(path), "--fuse", "auto"]):
        done = _graphperf(root, *command)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "acme::frob" in done.stderr and "--import" in done.stderr


def test_import_registers_the_op_before_loading(acme_pt2):
    root, path = acme_pt2
    done = _graphperf(root, "analyze", str(path), "--import", "acme_ops", "--format", "json", "--allow-unknown")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["totals"]["matrix_flops"] == 2 * 4 * 16 * 8
    assert doc["totals"]["unknown_ops"] == {"acme::acme.frob.default": 1}  # loaded; no cost rule for it
    # repeatable: a second, unrelated module is imported too
    done = _graphperf(root, "whatif", str(path), "--import", "acme_ops", "--import", "math", "--fuse", "auto")
    assert done.returncode == 0, done.stderr


def test_a_module_that_does_not_import_is_a_usage_error(acme_pt2):
    root, path = acme_pt2
    done = _graphperf(root, "analyze", str(path), "--import", "no_such_module_xyz")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--import no_such_module_xyz" in done.stderr


def test_the_api_takes_import_modules(acme_pt2):
    root, path = acme_pt2
    code = textwrap.dedent(f'''
        import graphperf
        from graphperf.errors import UsageError
        try:
            graphperf.analyze({str(path)!r})
        except UsageError as exc:
            assert "acme::frob" in str(exc) and "import_modules" in str(exc), exc
        else:
            raise SystemExit("loaded without the library")
        report = graphperf.analyze({str(path)!r}, import_modules=["acme_ops"], target="a100")
        assert report.totals["matrix_flops"] == 2 * 4 * 16 * 8
        graph = graphperf.capture({str(path)!r}, import_modules=("acme_ops",))
        assert any(n.op.name == "acme.frob.default" for n in graph.nodes)
    ''')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(root))
    assert done.returncode == 0, done.stderr
