"""graphperf calibrate --sweeps: the sweep grids build, a CPU dry run writes a sweep file the fit reads back,
and -o writes a target whose fitted fields name the file (no GPU here: the CUDA timing path is the same
calls under triton's do_bench)."""

import json

import pytest

torch = pytest.importorskip("torch")

from graphperf.calibrate.sweep_bench import GRIDS, grid  # noqa: E402
from graphperf.calibrate.sweeps import load_sweeps, sweep_call  # noqa: E402


@pytest.mark.parametrize("name", GRIDS)
def test_every_grid_record_builds_its_call(name):
    records = grid(name)
    assert set(records) == {"gemm", "attention", "elementwise"}
    keys = set()
    for group, recs in records.items():
        assert recs
        for rec in recs:
            key, fn, args = sweep_call(group, rec, "meta")
            keys.add(key)
            assert callable(fn) and args
    assert len(keys) == sum(len(r) for r in records.values())  # no record measured twice


def test_quick_grid_is_a_subset_of_the_default():
    default, quick = grid("default"), grid("quick")
    for group in default:
        assert all(r in default[group] for r in quick[group]) and len(quick[group]) < len(default[group])


def test_cpu_dry_run_writes_a_sweep_file_and_fits_a_target(tmp_path, capsys):
    from graphperf.cli import main
    from graphperf.target import load_target

    sweeps, target = tmp_path / "sweeps.json", tmp_path / "fitted.toml"
    code = main(["calibrate", "--sweeps", str(sweeps), "--grid", "tiny", "--device", "cpu", "--target", "h200",
                 "-o", str(target)])
    assert code == 0
    data = json.loads(sweeps.read_text())
    measured = sum(len(data[g]) for g in ("gemm", "attention", "elementwise"))
    assert measured == sum(len(r) for r in grid("tiny").values()) and not data["errors"]
    assert all(r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] for g in ("gemm", "attention", "elementwise")
               for r in data[g])
    rows, skipped = load_sweeps(str(sweeps))
    assert len(rows) == measured and not skipped
    fitted = load_target(str(target))
    assert fitted.calibrated and fitted.kernel_floor_us is not None
    assert "sweeps.json" in fitted.sources["matrix_efficiency"]
    assert "wrote" in capsys.readouterr().out


def test_sweeps_on_cuda_without_a_gpu_is_a_usage_error(tmp_path, capsys):
    from graphperf.cli import main

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["calibrate", "--sweeps", str(tmp_path / "s.json"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
