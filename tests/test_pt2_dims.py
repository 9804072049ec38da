"""Dynamic dimensions of ExportedPrograms and .pt2 files (issue 17): bound by the user's torch.export.Dim
names (in-memory programs), torch's symbols or input axes (what a .pt2 file keeps), within the exported
ranges; an unbound, unknown or out-of-range dimension is one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from torch.export import Dim

import graphperf
from graphperf import UsageError
from graphperf.capture.export_dims import ExportDim, program_dims
from graphperf.capture.torch_export import load_pt2
from graphperf.cli import main

IN, OUT, MAX_B = 8, 16, 1024


class LinearRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(IN, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


def linear_flops(batch: int) -> int:
    return 2 * batch * IN * OUT


@pytest.fixture(scope="module")
def program() -> torch.export.ExportedProgram:
    torch.manual_seed(0)
    return torch.export.export(LinearRelu(), (torch.randn(4, IN),),
                               dynamic_shapes={"x": {0: Dim("B", min=1, max=MAX_B)}})


@pytest.fixture(scope="module")
def pt2(program, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("pt2") / "linear.pt2"
    torch.export.save(program, path)
    return str(path)


def symbol_of(ep: torch.export.ExportedProgram) -> str:
    (sym,) = [str(k) for k in ep.range_constraints]
    return sym


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_error(capsys, *argv: str) -> str:
    """The one-line error of a refused command (exit 2)."""
    code, _, err = cli(capsys, *argv)
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def cli_flops(capsys, *argv: str) -> int:
    code, out, err = cli(capsys, *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)["totals"]["matrix_flops"]


def test_program_dims_keep_the_dim_name_in_memory_and_the_symbol_and_axis_in_a_file(program, pt2):
    sym = symbol_of(program)
    assert program_dims(program) == [ExportDim(sym, "B", ("x.shape[0]",), 1, MAX_B)]
    # torch.export.save writes neither Dim names nor the dynamic_shapes spec (torch 2.13)
    assert program_dims(load_pt2(pt2)) == [ExportDim(sym, None, ("x.shape[0]",), 1, MAX_B)]


@pytest.mark.parametrize("batch", [1, 4, MAX_B])
def test_dim_name_binds_an_exported_program(program, batch):
    assert graphperf.analyze(program, B=batch).totals["matrix_flops"] == linear_flops(batch)
    graph = graphperf.capture(program, B=batch)
    assert graph.values["x"].type.shape == (batch, IN)


def test_symbol_and_input_axis_bind_a_pt2_file(capsys, program, pt2):
    assert cli_flops(capsys, "analyze", pt2, "--dim", f"{symbol_of(program)}=4") == linear_flops(4)
    assert cli_flops(capsys, "analyze", pt2, "--dim", f"x.shape[0]={MAX_B}") == linear_flops(MAX_B)
    assert graphperf.analyze(pt2, **{"x.shape[0]": 3}).totals["matrix_flops"] == linear_flops(3)


def test_symbol_and_input_axis_are_aliases_of_the_dim_name(program):
    assert graphperf.analyze(program, **{symbol_of(program): 5}).totals["matrix_flops"] == linear_flops(5)
    with pytest.raises(UsageError, match=r"--dim B and --dim x.shape\[0\] name the same dimension"):
        graphperf.analyze(program, B=4, **{"x.shape[0]": 4})


def test_unbound_dim_names_its_input_axis_and_range(capsys, program, pt2):
    unbound = r"^exported_program: x.shape\[0\] is dynamic \(B, 1..1024\): pass --dim B=VALUE$"
    with pytest.raises(UsageError, match=unbound):
        graphperf.analyze(program)
    sym = symbol_of(program)
    line = cli_error(capsys, "analyze", pt2)
    assert line == f"error: linear.pt2: x.shape[0] is dynamic ({sym}, 1..1024): pass --dim {sym}=VALUE"


def test_unknown_dim_name_is_refused_with_the_model_dims(capsys, program, pt2):
    with pytest.raises(UsageError, match=r"dimension 'b' is not in the model; did you mean B\? its dynamic dimensions "
                                         r"are: B \(x.shape\[0\], 1..1024\)$"):
        graphperf.analyze(program, b=4)
    line = cli_error(capsys, "analyze", pt2, "--dim", "B=4")
    assert f"dimension 'B' is not in the model; its dynamic dimensions are: {symbol_of(program)} (x.shape[0], " \
           "1..1024) (a .pt2 file does not keep torch.export.Dim names" in line


def test_unknown_dim_name_of_a_static_program(capsys, tmp_path):
    path = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(LinearRelu(), (torch.randn(2, IN),)), path)
    line = cli_error(capsys, "analyze", str(path), "--dim", "B=4")
    assert "dimension 'B' is not in the model; its dynamic dimensions are: none" in line
    assert cli_flops(capsys, "analyze", str(path)) == linear_flops(2)


@pytest.mark.parametrize("value", [0, MAX_B + 1, 5000])
def test_value_outside_the_exported_range_is_refused(capsys, program, pt2, value):
    with pytest.raises(UsageError, match=r"B=\d+ (is outside the range B was exported for \(1..1024, x.shape\[0\]\)|"
                                         r"must be an integer from 1)"):
        graphperf.analyze(program, B=value)
    line = cli_error(capsys, "analyze", pt2, "--dim", f"x.shape[0]={value}")
    assert "outside the range" in line or "must be an integer from 1" in line
    if value > MAX_B:
        assert "pass a value from 1 to 1024" in line


def test_two_dims_shared_and_derived(program):
    """A Dim shared by two inputs, a derived Dim (2*B) and an unnamed Dim.AUTO dimension."""

    class Two(torch.nn.Module):
        def forward(self, x, y):
            return torch.cat([x, x], 0).sum(1) + y.sum(1)

    b = Dim("B", min=1, max=64)
    ep = torch.export.export(Two(), (torch.randn(3, 5), torch.randn(6, 7)),
                             dynamic_shapes={"x": {0: b, 1: Dim("W")}, "y": {0: 2 * b, 1: Dim.AUTO}})
    by_name = {d.label: d for d in program_dims(ep)}
    assert set(by_name) >= {"B", "W"} and by_name["B"].places == ("x.shape[0]",)
    assert by_name["B"].derived == ("y.shape[0] = 2*B",)
    with pytest.raises(UsageError, match=r"x.shape\[0\] is dynamic \(B, 1..64\); x.shape\[1\] is dynamic \(W, "):
        graphperf.capture(ep)
    auto = [d for d in program_dims(ep) if d.name is None]
    extra = {d.symbol: 7 for d in auto}
    graph = graphperf.capture(ep, B=3, W=5, **extra)
    assert graph.values["y"].type.shape[0] == 6


def test_a_dim_only_derived_keeps_its_root_name():
    """y.shape[0] is 2*B and no input is B itself: B still names the root symbol, the error shows the axis."""

    class Sum(torch.nn.Module):
        def forward(self, y):
            return y.sum(0)

    ep = torch.export.export(Sum(), (torch.randn(6, 7),), dynamic_shapes={"y": {0: 2 * Dim("B", min=1, max=64)}})
    with pytest.raises(UsageError, match=r"y.shape\[0\] = 2\*B is dynamic \(B, \d+..64\): pass --dim B=VALUE$"):
        graphperf.capture(ep)
    assert graphperf.capture(ep, B=3).values["y"].type.shape == (6, 7)


def test_one_dim_name_binds_the_program_and_its_onnx_export(program, tmp_path):
    """Cross-frontend: the ONNX export of the same program names its dim_param B, and --dim B=8 gives the same
    totals through both frontends."""
    path = tmp_path / "linear.onnx"
    torch.onnx.export(LinearRelu().eval(), (torch.randn(4, IN),), dynamo=True, opset_version=23, verbose=False,
                      dynamic_shapes={"x": {0: Dim("B", min=1, max=MAX_B)}}).save(str(path))
    from_onnx, from_program = graphperf.analyze(str(path), B=8), graphperf.analyze(program, B=8)
    assert from_onnx.totals["matrix_flops"] == from_program.totals["matrix_flops"] == linear_flops(8)
