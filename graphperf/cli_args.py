"""Command-line helpers every graphperf command shares: NAME=VALUE pairs (--set, --dim), the rule that a
command never writes its result over one of its inputs, the workload, mode and import options, the output
format from -o's extension, and the console and status line. Below cli.py and the command modules
(calibrate, validate, mlir, audit, serve), so none of them imports cli.py."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext
from typing import Optional

import click
from rich.console import Console

from .errors import UsageError

__all__ = ["set_option", "pairs", "refuse_overwriting", "stdout_is_terminal", "output_format", "wrote", "emit", "console",
           "status", "progress_bar", "workload_options", "mode_option", "import_option", "import_modules", "model_request",
           "DEFAULT_MODEL"]

#: The workload `graphperf analyze` runs without a MODEL argument (README: `make run`).
DEFAULT_MODEL = "llama3-8b"


def pairs(values: tuple[str, ...], flag: str, as_int: bool) -> dict:
    """`--set`/`--dim` values as a dict (values int when `as_int`); one-line UsageError for a malformed item."""
    out: dict = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            example = "hbm_gbps=4800" if flag == "--set" else "batch=8"
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE, e.g. {flag} {example}")
        if as_int:
            try:
                out[key] = int(raw)
            except ValueError:
                raise UsageError(f"{flag} {item!r}: {raw!r} is not an integer") from None
        else:
            out[key] = raw
    return out


def refuse_overwriting(output: Optional[str], *inputs: Optional[str], flag: str = "-o") -> None:
    """UsageError when `output` is one of the command's input files: a report never replaces its input."""
    if not output or not os.path.exists(output):
        return
    for path in inputs:
        if path and os.path.exists(path) and os.path.samefile(output, path):
            raise UsageError(f"{flag} {output} is an input of this command ({path}); writing there would destroy "
                             "it: pass another file name")


def stdout_is_terminal() -> bool:
    """True when stdout is a terminal (HTML is then refused without -o)."""
    return sys.stdout.isatty()


def output_format(fmt: str, output: Optional[str], choices: tuple[str, ...]) -> str:
    """The format to write: --format as given; without it, the one -o's extension names (`r.html` -> html).
    Refused: an explicit --format that contradicts -o's extension, an extension that names a format the command
    does not write (`-o r.html` where `choices` has no html), and HTML printed to a terminal."""
    from .report.save import format_of_path

    implied = format_of_path(output) if output else None
    implied = None if implied == "table" else implied  # .txt is the default; any --format may go in a .txt
    if implied is not None and implied not in choices:
        suffix = {"table": "txt", "json": "json", "csv": "csv", "html": "html"}
        raise UsageError(f"-o {output}: the file's extension says {implied}, which this command does not write "
                         f"(it writes {', '.join(choices)}): name the file "
                         + " or ".join(f"*.{suffix.get(c, c)}" for c in choices))
    explicit = click.get_current_context().get_parameter_source("fmt") != click.core.ParameterSource.DEFAULT
    if implied is not None and implied in choices:
        if not explicit:
            fmt = implied
        elif implied != fmt:
            raise UsageError(f"-o {output} with --format {fmt}: the file's extension says {implied}; pass "
                             f"--format {implied}, or a file name that fits {fmt}")
    if fmt == "html" and not output and stdout_is_terminal():
        raise UsageError("--format html writes a page, not terminal text: pass -o FILE.html")
    return fmt


def wrote(output: Optional[str], fmt: str) -> None:
    """Say where a report went when it went to a file (stderr: stdout stays free for a pipe)."""
    if output:
        click.echo(f"wrote {output} ({fmt})", err=True)


def emit(text: str, output: Optional[str]) -> None:
    """Write a rendered report to `output`, or to stdout when none is given."""
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def console(file=None) -> Console:
    """A console for reports: 160 columns when the output is not a terminal (files, pipes)."""
    console = Console(file=file)
    if not console.is_terminal:
        console.width = 160
    return console


def status(message: str):
    """A spinner with `message` on stderr while a step runs, when stderr is a terminal (else nothing)."""
    err = Console(stderr=True)
    return err.status(message) if err.is_terminal else nullcontext()


def workload_options(fn):
    """The workload-shaping options shared by `analyze` and `whatif` (see `_model_request`)."""
    for option in reversed((
        click.option("--config", default="full", show_default=True, help="Workload config (full, tiny, ...)."),
        click.option("--phase", help="Workload phase: prefill | decode (LLMs), forward."),
        click.option("--batch", type=click.IntRange(min=1), help="Batch size."),
        click.option("--seq", type=click.IntRange(min=1), help="Sequence length (prefill, encoders)."),
        click.option("--kv-len", type=click.IntRange(min=1), help="Context length attended to in decode."),
        click.option("--dtype", help="Workload dtype: bfloat16 (bf16), float16 (fp16, half), float32 (fp32, float)."),
        click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Bind a dynamic dimension of a file."),
        click.option("--attention", type=click.Choice(("sdpa", "eager")), default="sdpa", show_default=True,
                     help="Attention of models/ workloads: one fused SDPA node, or the unfused eager chain."),
    )):
        fn = option(fn)
    return fn


def set_option(fn):
    """`--set FIELD=VALUE` (repeatable): a target field overridden for the command (`pairs(sets, "--set", ...)`)."""
    return click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
                        help="Override a target field (repeatable).")(fn)


def mode_option(fn):
    """`--mode`: the execution model (graphperf/execution.py) shared by `analyze`, `whatif` and `correlate`."""
    from .execution import DEFAULT_MODE, MODES

    return click.option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE, show_default=True,
                        help="Execution model: eager (per-op host dispatch), graph (CUDA-graph replay), compiled "
                             "(every fusion rule, then the compiled wrapper's launches), reduce-overhead (the "
                             "compiled kernels replayed as a CUDA graph).")(fn)


def import_option(fn):
    """`--import MODULE` (repeatable), shared by `analyze`, `whatif` and `correlate`: imported before the model
    loads, so the custom ops a .pt2 calls (e.g. transformers::grouped_mm_fallback) are registered."""
    return click.option("--import", "imports", multiple=True, metavar="MODULE",
                        help="Import MODULE before loading (a library that registers custom ops the .pt2 calls, "
                             "e.g. --import transformers); repeatable.")(fn)


def import_modules(imports) -> tuple[str, ...]:
    """Import the `--import` modules (libraries that register a .pt2's custom ops); returns them as a tuple."""
    from .capture.torch_export import import_libraries

    import_libraries(imports)
    return tuple(imports)


def model_request(model, config, phase, batch, seq, kv_len, dtype, dims, attention="sdpa", imports=()):
    """The `ModelRequest` of a command's MODEL argument and workload options (the default workload without one)."""
    from .pipeline import ModelRequest

    return ModelRequest(model or DEFAULT_MODEL, config=config, phase=phase, batch=batch, seq=seq,
                        kv_len=kv_len, dtype=dtype, dims=pairs(dims, "--dim", as_int=True),
                        attention=None if attention == "sdpa" else attention, import_modules=tuple(imports))


@contextmanager
def progress_bar(what: str):
    """A rich progress bar on stderr, ``WHAT [bar] done/total elapsed``, while a long command runs; it yields
    ``advance(done, total, item="")`` (item: what is being worked on), or None when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not err.is_terminal:
        yield None
        return
    with Progress(TextColumn(f"{what} {{task.description}}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("", total=None)

        def advance(done: int, total: int, item: str = "") -> None:
            bar.update(task, completed=done, total=total, description=item)

        yield advance
