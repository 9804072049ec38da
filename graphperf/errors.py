"""User-facing errors: one clear line (what, where, what to do) and an exit code.

`UsageError` (exit 2): the user asked for something that does not exist or cannot be read
(unknown target, bad flag, missing or unreadable file, unbound dimension).
`AnalysisError` (exit 1): the input was readable but could not be analysed.
`RuleError`: a cost rule refuses a node it cannot interpret (a shape or attribute outside what the
rule models); `count` reports that node as unknown with the message. Any other exception from a rule
is a bug in the rule and stops the analysis with the op and node named.
The CLI prints ``error: <message>`` and exits with `exit_code`; no traceback.
"""

from __future__ import annotations

__all__ = ["GraphperfError", "UsageError", "AnalysisError", "RuleError"]


class GraphperfError(Exception):
    """Base class; `exit_code` is what the CLI returns.

    The CLI prints ``error: <message>`` and exits with `exit_code`; catch this class to handle every
    graphperf error in the Python API.

    Parameters
    ----------
    message : str
        One line: what went wrong, where, and what to do.

    Attributes
    ----------
    exit_code : int
        The CLI's exit status for this error.

    Example
    -------
    >>> import graphperf
    >>> try:
    ...     graphperf.analyze("no-such-model")
    ... except graphperf.GraphperfError as exc:
    ...     print(type(exc).__name__, exc.exit_code)
    UsageError 2
    """

    exit_code = 1


class UsageError(GraphperfError):
    """Bad input from the user: exit code 2.

    An unknown target or workload, a bad flag or argument, a missing or unreadable file, an unbound
    dimension.

    Parameters
    ----------
    message : str
        One line naming the bad input and what is accepted.

    Attributes
    ----------
    exit_code : int
        2.

    Example
    -------
    >>> import graphperf
    >>> graphperf.load_target("no-such-target")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graphperf.errors.UsageError: ...
    """

    exit_code = 2


class AnalysisError(GraphperfError):
    """Readable input that could not be analysed: exit code 1.

    torch.export failing on a module, a user pass that fails, changes its input graph or returns
    something other than a `Graph`.

    Parameters
    ----------
    message : str
        One line: what could not be analysed, and why.

    Attributes
    ----------
    exit_code : int
        1.

    Example
    -------
    >>> import graphperf
    >>> graphperf.analyze("gpt2", config="tiny", passes=[lambda graph: None])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graphperf.errors.AnalysisError: pass <lambda> returned NoneType; it must return a graphperf.Graph ...
    """

    exit_code = 1


class RuleError(ValueError):
    """Raised by a cost rule for a node it does not model (the node becomes unknown, with this message).

    A subclass of ValueError, not of `GraphperfError`: it never reaches the user, `count` turns it
    into the node's unknown reason.

    Parameters
    ----------
    message : str
        Why the rule does not model this node (it becomes the node's reason in the report).

    Example
    -------
    >>> import graphperf
    >>> from graphperf import Cost, Graph, Node, OpId, TensorType, Value
    >>> from graphperf.errors import RuleError
    >>> def my_rule(ins, outs, attrs):
    ...     if ins[0].rank != 2:
    ...         raise RuleError(f"my_op: expects a matrix, got {ins[0]}")
    ...     return Cost(flops=outs[0].numel)
    >>> t = TensorType((2, 3, 4), "float32")
    >>> g = Graph("g", [Node("n", OpId("acme", "my_op"), "acme.my_op", ("x",), ("y",))],
    ...           {"x": Value("x", t, kind="input"), "y": Value("y", t, producer="n")}, ["y"])
    >>> _ = graphperf.register_rule("acme::my_op", my_rule)
    >>> [c.reason for c in graphperf.count(g)]
    ['acme::my_op rule refused the node: my_op: expects a matrix, got float32[2,3,4]']
    >>> graphperf.unregister_rule("acme::my_op")
    """
