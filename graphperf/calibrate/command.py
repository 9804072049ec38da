"""`graphperf calibrate`: measure this machine and write a target file, or fit a target's
efficiencies to measured profiles (`--fit`) and report the fit on held-out profiles (`--holdout`).

Exit codes as the rest of the CLI: 0 success (a noisy measurement is reported, not an error,
unless --strict); 2 usage error; 1 when --strict and a measurement's spread is over the limit.
"""

from __future__ import annotations

import datetime
import json

import click

from ..errors import GraphperfError, UsageError

__all__ = ["calibrate"]


class _TooNoisy(GraphperfError):
    exit_code = 1


def _today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def _pct(x) -> str:
    return "-" if x is None else f"{x:+.1%}"


def _abs_pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _command_line(*parts: str) -> str:
    """The command as a user would retype it (the options that shape the figures)."""
    return " ".join(["graphperf calibrate", *(p for p in parts if p)])


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Target file to write (.toml); without it the figures are only printed.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="Threads for the CPU benchmarks (torch and onnxruntime intra-op); `graphperf profile` uses 1.")
@click.option("--repeats", default=7, show_default=True, type=click.IntRange(min=2),
              help="Repetitions of each measurement (min/median/max reported).")
@click.option("--quick", is_flag=True, help="Smaller sizes (a few seconds; figures less representative).")
@click.option("--sizes", "size_name", type=click.Choice(("default", "quick", "tiny")), hidden=True,
              help="Benchmark sizes (tiny: tests only).")
@click.option("--device", type=click.Choice(("cpu", "cuda")), default="cpu", show_default=True,
              help="Measure the CPU, or the CUDA GPU (needs torch with CUDA and a GPU).")
@click.option("--name", default=None,
              help="Target name written to the file (default: this machine's host name, e.g. build-07-cpu).")
@click.option("--strict", is_flag=True, help="Exit 1 when any measurement's spread is over the limit.")
@click.option("--fit", "fit_specs", multiple=True, metavar="[MODEL.onnx=]PROFILE.json|SWEEPS.json|[WORKLOAD=]TRACE",
              help="Fit to this onnxruntime profile (efficiencies and launch overhead), or to GPU kernel sweeps and "
                   "torch.profiler GPU traces (the size-aware kernel model); repeatable; writes -o.")
@click.option("--holdout", "holdout_specs", multiple=True, metavar="[MODEL.onnx=]PROFILE.json|[WORKLOAD=]TRACE",
              help="With --fit: a profile or trace kept out of the fit, to test it on (repeatable).")
@click.option("--target", "-t", default="host", show_default=True, help="With --fit: the target to fit.")
@click.option("--sweeps", "sweeps_path", type=click.Path(dir_okay=False, writable=True),
              help="Measure the kernel sweeps (GEMM, attention, elementwise) on --device and write them here (JSON); "
                   "with -o, also fit --target's kernel model to them.")
@click.option("--grid", type=click.Choice(("default", "quick", "tiny")), default="default", show_default=True,
              help="With --sweeps: which shapes (tiny: a dry run of a few small records).")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def calibrate(output, threads, repeats, quick, size_name, device, name, strict, fit_specs, holdout_specs, target,
              sweeps_path, grid, fmt):
    """Measure this machine (matmul peaks, memory and cache bandwidth, dispatch overhead) and write a
    target file, or with --fit, fit a target's efficiency factors to measured onnxruntime profiles.

    \b
    Every figure is repeated (--repeats) and printed as min / median / max; the target takes medians,
    and a spread (max - min) / median over 25% is flagged as too wide to trust.
    --fit: each counted node is in one op class by what bounds it: matrix work of matmuls, of
    convolutions or of attention (three classes), vector (other compute) or memory (bytes moved);
    the fit sets one efficiency per class found in the profiles and the launch overhead per node,
    then reports the error before and after on the --holdout profiles.
    """
    import os

    if output and not output.endswith(".toml"):
        raise UsageError(f"-o {output}: a target file must end in .toml")
    if output and not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise UsageError(f"-o {output}: no such directory; create it first (checked before measuring)")
    from ..cli_args import refuse_overwriting

    refuse_overwriting(output, target, sweeps_path,
                       *(part for spec in fit_specs + holdout_specs for part in spec.split("=")))
    if fit_specs:
        _fit(fit_specs, holdout_specs, target, output, fmt)
        return
    if sweeps_path:
        _sweeps(sweeps_path, grid, device, target, output, fmt)
        return
    if holdout_specs:
        raise UsageError("--holdout needs --fit: give the profiles to fit on with --fit PROFILE.json")
    from .measure import SPREAD_LIMIT
    from . import system
    from .target_file import cpu_target, cuda_target, measurement_lines, write

    date = _today()
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False); "
                             "run on a machine with one, or measure the CPU with --device cpu")
        from .cuda_bench import run_cuda

        results = run_cuda(512 if quick else 4096, (64 if quick else 1024) * 2**20, repeats)
        data = cuda_target(results, date, name or system.machine_name(str(results.get("device_name", "cuda"))),
                           _command_line("--device cuda", "--quick" if quick else "", f"--repeats {repeats}"))
    else:
        from . import cpu_bench

        sizes = {"tiny": cpu_bench.TINY, "quick": cpu_bench.QUICK}.get(size_name or ("quick" if quick else ""),
                                                                        cpu_bench.DEFAULT)
        err = click.get_text_stream("stderr")
        results = cpu_bench.run_cpu(sizes, repeats, threads,
                                    progress=lambda what: err.write(f"measuring {what}...\n") if err.isatty()
                                    else None)
        cmd = _command_line(f"--threads {threads}", f"--repeats {repeats}", "--quick" if quick else "",
                            f"--sizes {size_name}" if size_name else "")
        data = cpu_target(results, threads, date, name or system.machine_name("cpu"), cmd)
        import torch

        if torch.cuda.is_available():
            click.echo("note: a CUDA GPU is present; measure it into its own target with "
                       "`graphperf calibrate --device cuda -o gpu.toml`", err=True)
    noisy = [m for v in results.values() for m in (v if isinstance(v, list) else [v])
             if hasattr(m, "noisy") and m.noisy]
    if fmt == "json":
        out = {k: ([m.to_dict() for m in v] if isinstance(v, list) else v.to_dict() if hasattr(v, "to_dict") else v)
               for k, v in results.items()}
        click.echo(json.dumps({"schema": "graphperf.calibrate/1", "device": device, "threads": threads,
                               "date": date, "spread_limit": SPREAD_LIMIT, "results": out}, indent=1))
    else:
        click.echo(f"{data['label']}, {date}: min / median / max of {repeats} repeats")
        for line in measurement_lines(results):
            click.echo("  " + line)
        for k, v in results.items():
            if isinstance(v, str) and k != "device_name":
                click.echo(f"  {k}: {v}")
    if noisy:
        click.echo(f"warning: {len(noisy)} measurement(s) have a spread (max - min) / median over "
                   f"{SPREAD_LIMIT:.0%}, too wide to trust: {', '.join(m.name for m in noisy)}; other work may be "
                   "running on this machine: rerun when it is quiet, or with more --repeats", err=True)
    if output:
        write(data, output, header=f"Target measured by graphperf calibrate on {date}; see notes for the command.")
        click.echo(f"wrote {output} (target {data['name']}, {threads} thread(s), calibrated = true); use it with "
                   f"--target {output}", err=fmt == "json")
    if noisy and strict:
        raise _TooNoisy(f"{len(noisy)} measurement(s) too noisy (spread over {SPREAD_LIMIT:.0%}); --strict")


def _fit(fit_specs, holdout_specs, target_name, output, fmt) -> None:
    from ..target import load_target
    from .fit import evaluate, fit_target, fitted_target_dict, parse_case, residuals_by_op
    from .gpu_fit import is_gpu_spec
    from .target_file import write

    base = load_target(target_name)
    gpu = [is_gpu_spec(s) for s in (*fit_specs, *holdout_specs)]
    if any(gpu):
        if not all(gpu):
            raise UsageError("--fit/--holdout: GPU data (sweep files, torch.profiler traces) and onnxruntime "
                             "profiles are fitted by different models; give one kind per run")
        _fit_gpu(fit_specs, holdout_specs, base, output, fmt)
        return
    fit_cases = [parse_case(s, "--fit") for s in fit_specs]
    test_cases = [parse_case(s, "--holdout") for s in holdout_specs]
    both = {c.profile for c in fit_cases} & {c.profile for c in test_cases}
    if both:
        raise UsageError(f"--holdout {', '.join(sorted(both))}: also given to --fit; held-out profiles must be "
                         "kept out of the fit")
    result, fitted = fit_target(fit_cases, base)
    date = _today()
    cmd = _command_line(f"--target {target_name}", *(f"--fit {s}" for s in fit_specs),
                        *(f"--holdout {s}" for s in holdout_specs))
    data = fitted_target_dict(base, result, date, cmd)
    evaluation = evaluate(test_cases or fit_cases, [base, fitted])
    scope = "held-out" if test_cases else "fitted (in-sample: no --holdout given)"
    by_op = residuals_by_op([r for e in evaluation for r in e.pop("rows")])
    if fmt == "json":
        click.echo(json.dumps({"schema": "graphperf.calibrate-fit/1", "base": base.name, "fit": {
            "efficiencies": result.efficiencies, "launch_overhead_us": result.launch_overhead_us,
            "clipped": result.clipped, "failed": result.failed, "rows": result.rows, "profiles": result.cases},
            "evaluation_on": scope, "residuals_by_op": by_op,
            "evaluation": [{"model": e["model"], "profile": e["profile"], "before": e[0], "after": e[1]}
                           for e in evaluation]}, indent=1))
    else:
        eff = ", ".join(f"{c} {e:.3g}" for c, e in result.efficiencies.items())
        click.echo(f"fit of {base.name} on {len(fit_cases)} profile(s), {result.rows} rows: efficiency {eff}; "
                   f"launch overhead {result.launch_overhead_us:.3g} us")
        for note in result.clipped:
            click.echo(f"  {note}")
        click.echo(f"error on {scope} profiles, before ({base.name}) -> after (fitted):")
        click.echo(f"  {'model':<28}{'whole model':>22}{'median |err| >=20us':>24}{'within 2x':>20}")
        for e in evaluation:
            b, a = e[0], e[1]
            click.echo(f"  {e['model']:<28}{_pct(b['whole_model_error']) + ' -> ' + _pct(a['whole_model_error']):>22}"
                       f"{_abs_pct(b['median_ape_20us']) + ' -> ' + _abs_pct(a['median_ape_20us']):>24}"
                       f"{_abs_pct(b['within_2x']) + ' -> ' + _abs_pct(a['within_2x']):>20}")
        total = sum(d["measured_s"] for d in by_op) or 1.0
        off = [d for d in by_op if not 0.67 <= d["time_ratio"] <= 1.5 and d["measured_s"] >= 0.02 * total]
        if off:
            click.echo("ops the fitted target still misses (projected / measured over their rows; one efficiency "
                       "per class cannot fit them):")
            for d in off:
                click.echo(f"  {d['op']:<20} {d['rows']:>4} rows, {d['measured_s'] / total:>5.1%} of measured time, "
                           f"ratio {d['time_ratio']:.2f} (median {d['median_ratio']:.2f})")
    if output:
        write(data, output, header=f"Target fitted by graphperf calibrate --fit on {date}; see notes.")
        click.echo(f"wrote {output} (target {data['name']}, calibrated = true)", err=fmt == "json")


def _fit_gpu(fit_specs, holdout_specs, base, output, fmt) -> None:
    from .gpu_fit import fitted_target_dict, run_gpu_fit
    from .target_file import write

    result = run_gpu_fit(fit_specs, holdout_specs, base)
    outcome = result["outcome"]
    date = _today()
    cmd = _command_line(f"--target {base.name}", *(f"--fit {s}" for s in fit_specs),
                        *(f"--holdout {s}" for s in holdout_specs))
    if fmt == "json":
        click.echo(json.dumps({"schema": "graphperf.calibrate-gpu-fit/1", "base": base.name,
                               "fitted": outcome.fitted, "timer": vars(outcome.timer),
                               "fit_rows": result["fit_rows"], "held_out_rows": result["held_rows"],
                               "report": result["report"],
                               "skipped": [vars(s) for s in result["skipped"]]}, indent=1, default=vars))
    else:
        click.echo(f"kernel-model fit of {base.name} on {result['fit_rows']} measured kernels "
                   f"({result['held_rows']} held out):")
        click.echo("  " + ", ".join(f"{k} {v:.4g}" for k, v in outcome.fitted.items()))
        click.echo(f"  sweep timer: offset {outcome.timer.offset_us:.3g} us, dirty L2 share {outcome.timer.dirty_share:.3g}")
        click.echo(f"  {'rows':<10}{'group':<14}{'n':>5}{'median |err| before':>22}{'after':>10}{'>= 20 us after':>16}")
        for label, rep in result["report"].items():
            for group, after in rep.get("after", {}).items():
                before = rep["before"][group]
                click.echo(f"  {label:<10}{group:<14}{after['rows']:>5}{_abs_pct(before['median_ape']):>22}"
                           f"{_abs_pct(after['median_ape']):>10}{_abs_pct(after['median_ape_20us']):>16}")
        for s in result["skipped"]:
            click.echo(f"  skipped {s.key}: {s.reason}")
    if output:
        data = fitted_target_dict(base, result, date, cmd)
        write(data, output, header=f"Target fitted by graphperf calibrate --fit on {date}; see notes.")
        click.echo(f"wrote {output} (target {data['name']}, calibrated = true)", err=fmt == "json")


def _sweeps(path, grid, device, target_name, output, fmt) -> None:
    """Measure the kernel sweeps on `device`, write them to `path`; with `output`, fit the kernel model of
    `target_name` to them (about a third of the rows held out) and write the fitted target."""
    import torch

    from ..target import load_target
    from .sweep_bench import measure_sweeps, write_sweeps

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--sweeps --device cuda: torch sees no CUDA GPU here; run on a machine with one "
                         "(--device cpu only dry-runs the sweep code)")
    if device == "cpu":
        click.echo("note: --device cpu times the sweep calls on the CPU: a dry run of the code, not GPU data", err=True)
    err = click.get_text_stream("stderr")
    data = measure_sweeps(grid, device, progress=lambda what: err.write(f"measuring {what}\r") if err.isatty()
                          else None)
    write_sweeps(data, path)
    rows = sum(len(data.get(g, [])) for g in ("gemm", "attention", "elementwise"))
    click.echo(f"wrote {path} ({rows} kernels measured, {len(data['errors'])} failed)", err=fmt == "json")
    if output:
        _fit_gpu((path,), (), load_target(target_name), output, fmt)
