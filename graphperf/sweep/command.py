"""`graphperf sweep SPEC.toml -o table.csv|table.parquet [--jobs N] [--max-points N] [--cache-dir DIR]`: project a
grid of workloads, shapes, modes, targets and target fields (graphperf/sweep/spec.py) into one table."""

from __future__ import annotations

import click

from .spec import DEFAULT_MAX_POINTS

__all__ = ["sweep"]


@click.command()
@click.argument("spec_path", metavar="SPEC.toml")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The table: .csv or .parquet (resumed from its journal if an earlier run stopped).")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (local executor), or the CPUs of a local Ray instance (--executor ray).")
@click.option("--executor", type=click.Choice(("local", "ray")), default="local", show_default=True,
              help="local: a process pool; ray: Ray tasks (a local instance, or the cluster at --address).")
@click.option("--address", help="A Ray cluster's address (with --executor ray; default: start a local instance).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write a page: the Pareto fronts ([report] pareto) and each workload's sensitivities.")
@click.option("--max-points", default=DEFAULT_MAX_POINTS, show_default=True, type=click.IntRange(min=1),
              help="Refuse a grid larger than this (a typo can ask for 10^12 points).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Captured-graph cache (default ~/.cache/graphperf).")
@click.option("--chunk-points", default=None, type=click.IntRange(min=1), hidden=True,
              help="Points per task (tests: small chunks make a mid-sweep kill land between journal writes).")
def sweep(spec_path, output, jobs, executor, address, html_path, max_points, cache_dir, chunk_points):
    """Project every point of the grid SPEC.toml names; one row per point: its axes, then the report's totals."""
    import time

    from ..cli_args import progress_bar, refuse_overwriting, wrote
    from .run import run_sweep
    from .spec import load_spec

    refuse_overwriting(output, spec_path)
    refuse_overwriting(html_path, spec_path, output, flag="--html")
    spec = load_spec(spec_path, max_points)
    start = time.perf_counter()
    with progress_bar("sweeping") as progress:
        rows = run_sweep(spec, output, jobs=jobs, cache=cache_dir, progress=progress, chunk_points=chunk_points,
                         executor=executor, address=address)
    seconds = time.perf_counter() - start
    click.echo(f"{len(rows):,} points in {seconds:.1f} s ({len(rows) / seconds:,.0f} points/s)", err=True)
    wrote(output, output.rsplit(".", 1)[-1])
    if html_path:
        from .answers import elasticities, render_sweep_html

        with open(html_path, "w", encoding="utf-8") as fh:
            fh.write(render_sweep_html(spec, rows, elasticities(spec, cache_dir)))
        wrote(html_path, "html")

