"""`graphperf validate`: run reference/measurements.json through graphperf and report the error per category.

    graphperf validate [--category CAT ...] [--reference FILE] [--format table|json] [-o FILE]

Exit 0 when the run completes (the errors are the result, not a failure); 2 for an unreadable
reference file or an unknown category.
"""

from __future__ import annotations

import sys

import click

from graphperf.errors import UsageError

CATEGORIES = ("gemm", "attention", "elementwise_norm", "memory_bandwidth", "llm_inference", "cpu")


@click.command()
@click.option("--category", "categories", multiple=True, metavar="CAT",
              help=f"Only these record categories (repeatable): {', '.join(CATEGORIES)}. Default: all "
                   "(llm_inference captures full LLMs on the meta device: ~30 s).")
@click.option("--reference", "reference", type=click.Path(dir_okay=False),
              help="measurements.json to use (default: $GRAPHPERF_REFERENCE_DIR or the repository's reference/).")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the result here.")
def validate(categories, reference, fmt, output):
    """Project the published measurements (GEMM, attention, norms, bandwidth, LLM decode) and report the error."""
    from .run import default_reference, load_records, render_markdown, validate_records

    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise UsageError(f"--category {bad[0]!r}: choose from {', '.join(CATEGORIES)}")
    from ..cli_args import progress_bar, refuse_overwriting

    refuse_overwriting(output, reference or default_reference())
    records = load_records(reference or default_reference())
    with progress_bar("validating") as progress:
        result = validate_records(records, categories, progress)
    text = result.to_json() if fmt == "json" else render_markdown(result)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output} ({fmt})", err=True)
    else:
        sys.stdout.write(text)

