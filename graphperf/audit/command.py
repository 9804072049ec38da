"""`graphperf audit MODEL [--target T] [workload options] [--mode M] [--format table|json|html] [-o FILE]
[--fail-on SEVERITY]`: ranked findings, each with the gain of the what-if that implements it.

Exit 0 with findings (an audit that finds something has not failed); with ``--fail-on SEVERITY``, exit 1 when
a finding is that severe or more (for CI); 2 for bad input, as every graphperf command.
"""

from __future__ import annotations

import click

from ..cli_args import import_option, mode_option, set_option, workload_options
from .finding import SEVERITIES

__all__ = ["audit"]


class _Failed(click.ClickException):
    exit_code = 1


@click.command()
@click.argument("model", required=False)
@click.option("--target", "-t", default="h100", show_default=True, help="Target name or a .toml file.")
@set_option
@click.option("--format", "fmt", type=click.Choice(("table", "json", "html")), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the result here.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="Exit 1 when a finding is this severe or more.")
@click.option("--check", "checks", multiple=True, metavar="NAME", help="Run only these checks (repeatable).")
@workload_options
@mode_option
@import_option
def audit(model, target, sets, fmt, output, fail_on, checks, **workload):
    """Audit MODEL on TARGET: findings ranked by severity and by the gain of the what-if that was run for each."""
    import sys
    from contextlib import nullcontext

    from ..cli_args import (console, emit, import_modules, model_request, output_format, pairs,
                            refuse_overwriting, status, wrote)
    from ..pipeline import load_graph
    from ..target import load_target
    from .render import render_audit_html, render_audit_table
    from .run import audit_graph

    fmt = output_format(fmt, output, ("table", "json", "html"))
    refuse_overwriting(output, model, target)
    tgt = load_target(target, pairs(sets, "--set", as_int=False))
    imports = import_modules(workload.pop("imports", ()))
    mode = workload.pop("mode", "graph")
    req = model_request(model, imports=imports, **workload)
    with status(f"capturing {req.ref}"):
        graph, info = load_graph(req)
    with status(f"auditing {len(graph)} nodes (one what-if per finding)"):
        result = audit_graph(graph, tgt, info, mode, list(checks) or None)
    if fmt == "json":
        emit(result.to_json(), output)
    elif fmt == "html":
        emit(render_audit_html(result), output)
    else:
        with open(output, "w") if output else nullcontext(sys.stdout) as fh:
            render_audit_table(result, console(fh))
    wrote(output, fmt)
    if fail_on is not None:
        worst = [f for f in result.findings if SEVERITIES.index(f.severity) <= SEVERITIES.index(fail_on)]
        if worst:
            raise _Failed(f"{len(worst)} finding(s) at or above --fail-on {fail_on}: {worst[0].title}")


