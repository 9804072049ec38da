"""`graphperf mlir MODEL [-o out.mlir] [--stage torch|linalg] [--target NAME] [--dim NAME=N] [--keep-weights]`.

Lowers MODEL through torch-mlir (graphperf.mlir.lower; an ONNX file's dynamic dimensions bound by
``--dim``, as for ``analyze``), costs it (linalg stage: the MLIR-level report; torch stage: the
graph-level report of the same program) and writes the module with ``graphperf.*`` attributes on
each op (graphperf.mlir.annotate) to `-o` or stdout. Weights are elided unless ``--keep-weights``
(the text's first line and a stderr note say so). Errors are one line (UsageError exit 2,
AnalysisError exit 1), as for every graphperf command.
"""

from __future__ import annotations

import sys

import click

from ..cli_args import set_option

__all__ = ["mlir"]


def _options(fn):
    for option in reversed((
        click.option("--config", default="tiny", show_default=True,
                     help="Workload config; the MLIR level embeds weights, so small configs."),
        click.option("--phase", help="Workload phase: prefill | decode (LLMs), forward."),
        click.option("--batch", type=click.IntRange(min=1), help="Batch size."),
        click.option("--seq", type=click.IntRange(min=1), help="Sequence length (prefill, encoders)."),
        click.option("--kv-len", type=click.IntRange(min=1), help="Context length attended to in decode."),
        click.option("--dtype", help="Workload dtype: bfloat16, float16, float32."),
        click.option("--dim", "dims", multiple=True, metavar="NAME=N",
                     help="Bind a dynamic dimension of an .onnx file (repeatable)."),
    )):
        fn = option(fn)
    return fn


@click.command()
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the MLIR here.")
@click.option("--stage", type=click.Choice(("torch", "linalg")), default="linalg", show_default=True,
              help="torch: the torch dialect (graph-level figures); linalg: linalg-on-tensors (MLIR-level figures).")
@click.option("--target", "-t", default="h100", show_default=True, help="Target for graphperf.latency_s.")
@set_option
@click.option("--keep-weights", is_flag=True,
              help="Write the weights' values (elided by default: a real model's are gigabytes of hex).")
@_options
def mlir(model, output, stage, target, sets, keep_weights, config, phase, batch, seq, kv_len, dtype, dims):
    """Write MODEL as MLIR (through torch-mlir) with graphperf's figures on every op."""
    from ..cli_args import pairs, refuse_overwriting
    from ..pipeline import ModelRequest, analyze_graph
    from ..target import load_target
    from .analyze import analyze_mlir, load_mlir
    from .annotate import annotate, elision_note, to_text

    refuse_overwriting(output, model, target)
    tgt = load_target(target, pairs(sets, "--set", as_int=False))
    req = ModelRequest(model, config=config, phase=phase, batch=batch, seq=seq, kv_len=kv_len, dtype=dtype,
                       dims=pairs(dims, "--dim", as_int=True))
    capture = load_mlir(req, stage=stage)
    if stage == "linalg":
        report = analyze_mlir(capture, tgt)
    else:
        report = analyze_graph(capture.graph_level, tgt, capture.info)
    annotate(capture.lowered, report)
    note = "" if keep_weights else elision_note(capture.lowered)
    text = to_text(capture.lowered, keep_weights=keep_weights)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    for warning in capture.warnings:
        click.echo(f"warning: {warning}", err=True)
    if note:
        click.echo(f"note: {note}", err=True)
