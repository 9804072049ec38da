"""Command line: `graphperf analyze | targets | models | profile | correlate | whatif | calibrate | validate | audit |
mlir`.

`analyze --format table|json|csv|html`; `--target a,b,c` (several targets) renders a side-by-side
comparison and needs `--format html` (the other formats hold one target each).

Exit codes: 0 success; 2 usage error (unknown target, bad flag, unreadable file); 1 analysis
failure, including nodes without a cost rule unless --allow-unknown. Errors print one line,
``error: ...``, on stderr; no traceback.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Optional

import click

from .cli_args import pairs, refuse_overwriting, set_option
from .cli_args import console as _console
from .cli_args import emit as _emit
from .cli_args import import_modules as _import
from .cli_args import import_option as _import_option
from .cli_args import mode_option as _mode_option
from .cli_args import model_request as _model_request
from .cli_args import output_format as _output_format
from .cli_args import status as _status
from .cli_args import workload_options as _workload_options
from .cli_args import wrote as _wrote
from .errors import GraphperfError, UsageError

DEFAULT_TARGET = "h100"
FORMATS = ("table", "json", "csv", "html")
HTML_TOP = 100


def _html_top(top: int, html_default: int) -> int:
    """`--top` as given, or the HTML page's own default when the user left it at the table's."""
    source = click.get_current_context().get_parameter_source("top")
    return html_default if source == click.core.ParameterSource.DEFAULT else top


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graphperf")
def cli() -> None:
    """Project FLOPs, bytes and latency of every node of a model graph on an accelerator."""


@cli.command()
@click.argument("model", required=False)
@click.option("--target", "-t", default=DEFAULT_TARGET, show_default=True,
              help="Target name or a .toml file; several, comma-separated, for a side-by-side --format html page.")
@set_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@_workload_options
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help=f"Rows in table views (html: {HTML_TOP} top nodes unless given).")
@click.option("--allow-unknown", is_flag=True, help="Exit 0 even when some nodes have no cost rule.")
@click.option("--level", type=click.Choice(("graph", "mlir")), default="graph", show_default=True,
              help="graph: cost rules per graph node; mlir: lower through torch-mlir and cost every linalg op.")
@_mode_option
@_import_option
def analyze(model, target, sets, fmt, output, config, phase, batch, seq, kv_len, dtype, dims, top, allow_unknown,
            attention="sdpa", level="graph", mode="graph", imports=()):
    """Analyse MODEL (.onnx, .pt2 or a workload name; default: llama3-8b prefill on h100)."""
    imports = _import(imports)
    fmt = _output_format(fmt, output, FORMATS)
    refuse_overwriting(output, model, *_target_names(target))
    from .pipeline import analyze_graph, load_graph
    from .report.csv_report import to_csv
    from .report.json_report import to_json
    from .report.table import render_table
    from .target import load_target

    overrides = pairs(sets, "--set", as_int=False)
    tgts = [load_target(name, overrides) for name in _target_names(target)]
    twice = sorted({t.name for t in tgts if [u.name for u in tgts].count(t.name) > 1})
    if twice:
        raise UsageError(f"--target {target}: {', '.join(twice)} given twice; list each target once")
    if len(tgts) > 1 and fmt != "html":
        raise UsageError(f"--target {target}: several targets need --format html (table, json and csv hold one "
                         "target each; run once per target for those)")
    if len(tgts) > 1 and overrides:
        click.echo(f"note: --set {' '.join(sets)} applies to every target ({', '.join(t.name for t in tgts)}); "
                   "each section's title shows it", err=True)
    req = _model_request(model, config, phase, batch, seq, kv_len, dtype, dims, attention, imports)
    if level == "mlir":
        from .mlir.analyze import analyze_mlir, load_mlir

        with _status(f"lowering {req.ref} through torch-mlir"):
            capture = load_mlir(req)
        reports = [analyze_mlir(capture, tgt, mode) for tgt in tgts]
        for warning in capture.warnings:
            click.echo(f"warning: {warning}", err=True)
    else:
        with _status(f"capturing {req.ref}"):
            graph, info = load_graph(req)
        with _status(f"analysing {len(graph)} nodes"):
            reports = [analyze_graph(graph, tgt, info, mode=mode) for tgt in tgts]
    report = reports[0]
    if fmt == "html":
        from .report.html import render_html

        _emit(render_html(reports, top=_html_top(top, HTML_TOP)), output)
    elif fmt == "table":
        with open(output, "w") if output else nullcontext(sys.stdout) as fh:
            render_table(report, _console(fh), top)
    else:
        _emit(to_json(report) if fmt == "json" else to_csv(report), output)
    _wrote(output, fmt)
    unknown = report.totals["unknown_ops"]
    if unknown and not allow_unknown:
        listed = ", ".join(f"{op} x{n}" for op, n in unknown.items())
        raise _UnknownOps(f"{req.ref}: {sum(unknown.values())} nodes have no cost rule ({listed}); coverage "
                          f"{report.totals['coverage']:.1%}, latency is a lower bound. Add a rule (README: "
                          "'Adding a cost rule') or pass --allow-unknown")


def _target_names(value: str) -> list[str]:
    """`h100,mi300x` -> ["h100", "mi300x"]; a single name or file path (even one with a comma) stays whole."""
    import os

    if "," not in value or os.path.exists(value):
        return [value]
    names = [part.strip() for part in value.split(",")]
    if not all(names):
        raise UsageError(f"--target {value!r}: empty name in the list; give names separated by commas, "
                         "e.g. --target h100,mi300x")
    return names


class _UnknownOps(GraphperfError):
    exit_code = 1


@cli.command()
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def targets(fmt):
    """List every bundled target: key figures, efficiency defaults, source."""
    import json

    from .report.catalog import render_targets
    from .target import list_targets, load_target

    loaded = [load_target(name) for name in list_targets()]
    if fmt == "json":
        sys.stdout.write(json.dumps([t.to_dict() for t in loaded], indent=1) + "\n")
        return
    render_targets(loaded, _console())


@cli.command()
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def models(fmt):
    """List every reference workload with its configs and phases."""
    import json

    from graphperf import models as workloads

    from .report.catalog import render_models

    specs = workloads.list_models()
    if fmt == "json":
        rows = [{"name": s.name, "family": s.family, "description": s.description, "configs": sorted(s.configs),
                 "phases": list(s.phases), "default_dtype": s.default_dtype} for s in specs]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    render_models(specs, _console())


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Profile JSON to write (default: MODEL-stem.profile.json here).")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Bind a dynamic dimension of the model.")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(min=1), help="Measured runs.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0), help="Unmeasured runs first.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="onnxruntime intra-op threads.")
@click.option("--optimization", type=click.Choice(("basic", "disable")), default="basic", show_default=True,
              help="onnxruntime graph optimizations (basic saves PROFILE.optimized.onnx to map fused nodes back).")
def profile(model, output, dims, runs, warmup, threads, optimization):
    """Run MODEL (.onnx) under onnxruntime with profiling and write the per-node profile JSON."""
    from .correlate.ort_profile import profile_onnx

    if not model.lower().endswith(".onnx"):
        raise UsageError(f"{model}: `graphperf profile` runs .onnx files under onnxruntime; export the model "
                         "to ONNX first")
    refuse_overwriting(output, model)
    with _status(f"profiling {model}"):
        path = profile_onnx(model, output, dims=pairs(dims, "--dim", as_int=True), runs=runs, warmup=warmup,
                            threads=threads, optimization=optimization)
    click.echo(f"wrote {path} ({warmup} warm-up + {runs} measured runs, {threads} thread(s), "
               f"optimization {optimization})")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--profile", "profile_path", required=True, type=click.Path(dir_okay=False),
              help="onnxruntime profile JSON (`graphperf profile`) or a torch.profiler Chrome trace.")
@click.option("--target", "-t", required=True, help="Target name or a .toml file.")
@set_option
@click.option("--format", "fmt", type=click.Choice(("table", "json", "html")), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the result here.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write a Chrome/Perfetto trace with measured and projected tracks.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help="Outlier rows shown (html: 20 unless given).")
@_workload_options
@_mode_option
@_import_option
def correlate(model, profile_path, target, sets, fmt, output, trace_path, top, config, phase, batch, seq, kv_len,
              dtype, dims, attention="sdpa", mode="graph", imports=()):
    """Compare MODEL's projection on TARGET with a measured profile, node by node: an onnxruntime profile
    of an .onnx file, or a torch.profiler trace of a models/ workload or .pt2 file."""
    imports = _import(imports)
    fmt = _output_format(fmt, output, ("table", "json", "html"))
    refuse_overwriting(output, model, profile_path, target)
    refuse_overwriting(trace_path, model, profile_path, target, flag="--trace")
    import json
    import os

    from .correlate.match import correlate as run_correlate
    from .correlate.reader import profile_format
    from .correlate.table import render_correlation
    from .target import load_target

    if not os.path.isfile(profile_path):
        raise UsageError(f"{profile_path}: no such profile; write one with `graphperf profile MODEL.onnx` or "
                         "torch.profiler's export_chrome_trace")
    kineto = profile_format(profile_path) == "kineto"
    if not kineto and not model.lower().endswith(".onnx"):
        raise UsageError(f"{model}: an onnxruntime profile correlates with the .onnx file that was profiled; "
                         "pass that file")
    if not kineto and not os.path.isfile(model):
        raise UsageError(f"{model}: no such file; pass the .onnx file that was profiled")
    tgt = load_target(target, pairs(sets, "--set", as_int=False))
    request = _model_request(model, config, phase, batch, seq, kv_len, dtype, dims, attention,
                             imports) if kineto else None
    with _status(f"correlating {model}"):
        result = run_correlate(model, profile_path, tgt, dims=pairs(dims, "--dim", as_int=True), request=request,
                               mode=mode)
    if trace_path:
        from .correlate.trace import write_trace

        write_trace(result, trace_path)
    if fmt == "json":
        _emit(json.dumps(result.to_dict(top), indent=1) + "\n", output)
    elif fmt == "html":
        from .report.html_correlate import DEFAULT_TOP, render_correlate_html

        _emit(render_correlate_html(result, top=_html_top(top, DEFAULT_TOP)), output)
    else:
        with open(output, "w") if output else nullcontext(sys.stdout) as fh:
            render_correlation(result, _console(fh), top)
    _wrote(output, fmt)


@cli.command()
@click.argument("model", required=False)
@click.option("--target", "-t", default=DEFAULT_TARGET, show_default=True, help="Target name or a .toml file.")
@click.option("--fuse", default="none", show_default=True, metavar="none|auto|RULE,...",
              help="Fusion rules: attention, epilogue, norm, elementwise (auto = all, in that order).")
@click.option("--group", "groups", multiple=True, metavar="PATTERN,...",
              help="Fuse the nodes whose names or modules match into one kernel (repeatable: one group each).")
@click.option("--tile", metavar="auto|OP=MxNxK,...",
              help="Tile matmul/conv/attention nodes: search (auto) or set tiles per op or node name.")
@click.option("--precision", metavar="CLASS=DTYPE,...",
              help="Rewrite dtypes: weights, activations, kv (e.g. weights=fp8,activations=bf16,kv=fp8).")
@click.option("--pad", metavar="SIZE=MULTIPLE,...|auto",
              help="Pad GEMM dimensions of SIZE up to a multiple (50257=64 -> 50304), or every misaligned one (auto).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Change a target field after (repeatable).")
@click.option("--sweep", metavar="FIELD=START:STOP:STEP", help="Project the rewritten graph over a target field's range.")
@click.option("--format", "fmt", type=click.Choice(("table", "json", "html")), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the result here.")
@_workload_options
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help="Rows in table views (html: bar pairs per chart, 30 unless given).")
@_mode_option
@_import_option
def whatif(model, target, fuse, precision, sets, sweep, fmt, output, config, phase, batch, seq, kv_len, dtype, dims,
           top, groups=(), attention="sdpa", pad=None, tile=None, mode="graph", imports=()):
    """Rewrite MODEL (fusion rules and named groups, tiling, precision, padding) and/or change the target, and compare
    the projection before and after."""
    imports = _import(imports)
    fmt = _output_format(fmt, output, ("table", "json", "html"))
    refuse_overwriting(output, model, target)
    if "," in target:
        raise UsageError(f"--target {target}: whatif projects one target before and after its rewrite; compare "
                         f"targets with `graphperf analyze MODEL --target {target} --format html -o cmp.html`, or "
                         "change this one with --set")
    from graphperf.passes.precision import parse_precision
    from graphperf.passes.whatif import parse_fuse, parse_sweep
    from graphperf.passes.fuse_named import parse_group
    from graphperf.passes.pad import parse_pad
    from graphperf.passes.tiling import parse_tile
    from graphperf.passes.whatif import whatif as run_whatif

    from .pipeline import load_graph
    from .report.whatif_report import render_whatif, whatif_to_json
    from .target import load_target

    fusions = parse_fuse(fuse)
    named = [parse_group(g) for g in groups]
    tiles = parse_tile(tile) if tile else None
    spec = parse_precision(precision) if precision else None
    pads = parse_pad(pad) if pad is not None else None
    overrides = pairs(sets, "--set", as_int=False)
    sweep_spec = parse_sweep(sweep) if sweep else None
    tgt = load_target(target)
    if overrides:
        tgt.with_overrides(**overrides)  # a bad field fails now, before the capture
    if sweep_spec:
        tgt.with_overrides(**{sweep_spec[0]: sweep_spec[1][0]})
    req = _model_request(model, config, phase, batch, seq, kv_len, dtype, dims, attention, imports)
    with _status(f"capturing {req.ref}"):
        graph, info = load_graph(req)
    with _status(f"what-if on {len(graph)} nodes"):
        result = run_whatif(graph, tgt, info, fuse=fusions, precision=spec, sets=overrides, sweep_spec=sweep_spec,
                            groups=named, pad=pads, tile=tiles, mode=mode)
    if fmt == "json":
        _emit(whatif_to_json(result), output)
    elif fmt == "html":
        from .report.html_whatif import DEFAULT_TOP, render_whatif_html

        _emit(render_whatif_html(result, top=_html_top(top, DEFAULT_TOP)), output)
    else:
        with open(output, "w") if output else nullcontext(sys.stdout) as fh:
            render_whatif(result, _console(fh), top)
    _wrote(output, fmt)


cli.add_command(__import__("graphperf.calibrate.command", fromlist=["calibrate"]).calibrate)
cli.add_command(__import__("graphperf.validate.command", fromlist=["validate"]).validate)
cli.add_command(__import__("graphperf.mlir.command", fromlist=["mlir"]).mlir)
cli.add_command(__import__("graphperf.audit.command", fromlist=["audit"]).audit)
cli.add_command(__import__("graphperf.serve.command", fromlist=["serve"]).serve)
cli.add_command(__import__("graphperf.sweep.command", fromlist=["sweep"]).sweep)
cli.add_command(__import__("graphperf.train.command", fromlist=["train"]).train)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: runs the CLI and turns every user error into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="graphperf", standalone_mode=False)
    except GraphperfError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see graphperf --help)", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
