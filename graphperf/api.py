"""The Python API: analyse a model in one call, capture its graph, add user cost rules and passes.

Guarantees:
- `analyze` takes every model form the CLI takes (an ``.onnx`` or ``.pt2`` path, a models/
  workload name) and the in-memory ones (an ``nn.Module`` with example inputs, an
  ``ExportedProgram``, an ``onnx.ModelProto``, a captured `Graph`), and returns the `Report` the
  CLI renders: ``analyze("gpt2", config="tiny").to_json()`` is what ``graphperf analyze gpt2
  --config tiny --format json`` prints.
- User cost rules (`register_rule`) give a cost to ops graphperf reports as unknown (custom ops,
  ops outside the canonical set); they never replace a built-in rule.
- User passes (`register_pass`, or ``analyze(..., passes=[...])``) run on every analysis,
  torch.compile reports included, after canonicalization and before counting, in registration
  order. A pass returns a new `Graph` (or an object with a ``.graph``); one that changes its input's
  node list or values is refused with `AnalysisError`.
- Bad arguments raise `UsageError` naming the argument and what is accepted.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from .errors import AnalysisError, UsageError
from .execution import check_mode
from .ir import Graph, OpId
from .ops import CANONICAL
from .pipeline import ModelRequest, analyze_graph, load_graph
from .report.model import Report
from .rules.registry import Rule, register_user_rule, unregister_user_rule
from .target import Target, load_target

__all__ = ["analyze", "capture", "register_rule", "unregister_rule", "register_pass", "unregister_pass",
           "registered_passes"]

Pass = Callable[[Graph], Any]
_PASSES: dict[str, Pass] = {}


# -- capture ----------------------------------------------------------------------------------------


def capture(model: Any, example_inputs: Any = None, *, phase: Optional[str] = None, config: str = "full",
            batch: Optional[int] = None, seq: Optional[int] = None, kv_len: Optional[int] = None,
            dtype: Optional[str] = None, name: Optional[str] = None, import_modules: Sequence[str] = (),
            **dims: int) -> Graph:
    """Capture `model` as a `Graph` (nothing counted yet); ``graph.meta["model"]`` describes it.

    Parameters
    ----------
    model : nn.Module, ExportedProgram, onnx.ModelProto, Graph, str or path
        An ``nn.Module`` (with `example_inputs`), a ``torch.export.ExportedProgram``, an
        ``onnx.ModelProto``, a path to an ``.onnx`` or ``.pt2`` file, or a models/ workload name
        (``"llama3-8b"``); a `Graph` is returned as it is.
    example_inputs : tensor, tuple or dict, optional
        For an ``nn.Module`` only: a tensor, a tuple of arguments or a dict of keyword arguments.
    phase, config, batch, seq, kv_len, dtype : optional
        Shape a workload name (as the CLI's flags do). `dtype` takes the canonical names and the short
        spellings (``bf16``, ``fp16``, ``half``, ``fp32``, ``float``).
    name : str, optional
        The model's name in the graph and reports (default: the file, workload or class name).
    import_modules : sequence of str
        Modules imported first (as the CLI's ``--import``): the libraries that register the custom ops a
        .pt2 calls (``import_modules=["transformers"]``).
    **dims : int
        Bind named dynamic dimensions of a file or program (``batch=8, sequence=128`` for an ONNX file;
        an ExportedProgram's ``torch.export.Dim`` names, ``B=8``; for a .pt2 file, which does not keep
        Dim names, torch's symbol, ``s77=8``, or the input axis, ``**{"x.shape[0]": 8}``). Values outside
        the exported range are refused. For files, `batch`/`seq`/`kv_len` are dimension names too.

    Returns
    -------
    Graph
        The captured graph, not canonicalized; ``graph.meta["model"]`` is the report's ``model`` section.

    Raises
    ------
    UsageError
        An unknown workload, an unreadable file, arguments that do not apply to this form of model
        (``example_inputs`` for a file, ``batch`` for an ``nn.Module``), an unbound dimension.
    AnalysisError
        torch.export failed on an ``nn.Module``.

    Example
    -------
    >>> import torch, graphperf
    >>> g = graphperf.capture(torch.nn.Linear(8, 4), torch.randn(2, 8))
    >>> [str(n.op) for n in g], g.meta["model"]["name"]
    (['matmul'], 'Linear')
    >>> len(graphperf.capture("gpt2", config="tiny")) > 0
    True
    """
    _import_modules(import_modules)
    graph, info = _capture(model, example_inputs, phase=phase, config=config, batch=batch, seq=seq,
                           kv_len=kv_len, dtype=dtype, name=name, dims=dims)
    graph.meta["model"] = info
    return graph


def _import_modules(modules: Sequence[str]) -> None:
    if modules:
        from .capture.torch_export import import_libraries

        import_libraries(modules)


def _capture(model: Any, example_inputs: Any, *, phase, config, batch, seq, kv_len, dtype, name,
             dims: Mapping[str, int]) -> tuple[Graph, dict[str, Any]]:
    shaping = {"phase": phase, "batch": batch, "seq": seq, "kv_len": kv_len, "dtype": dtype}
    if isinstance(model, Graph):
        _only(model.name, "a captured Graph", example_inputs, shaping, config, dims)
        info = dict(model.meta.get("model") or {"name": name or model.name, "frontend": model.meta.get("frontend", "")})
        return model, info
    if isinstance(model, (str, os.PathLike)):
        return _capture_ref(os.fspath(model), example_inputs, shaping, config, name, dims)
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    if kind.startswith("onnx") and type(model).__name__ == "ModelProto":
        from .capture.onnx_capture import capture_onnx

        label = name or model.graph.name or "model.onnx"
        _only(label, "an ONNX model", example_inputs, {**shaping, "batch": None, "seq": None, "kv_len": None}, config, {})
        graph = capture_onnx(model, dims=_file_dims(dims, shaping))
        return graph, {"name": label, "frontend": "onnx", "source": "onnx.ModelProto", "description": label,
                       "dims": dict(sorted(_file_dims(dims, shaping).items()))}
    import torch

    from .capture.torch_export import capture_exported, capture_module

    if isinstance(model, torch.export.ExportedProgram):
        label = name or "exported_program"
        _only(label, "an ExportedProgram", example_inputs, {**shaping, "batch": None, "seq": None, "kv_len": None},
              config, {})
        file_dims = _file_dims(dims, shaping)
        return capture_exported(model, name=label, dims=file_dims), {
            "name": label, "frontend": "torch.export", "source": "ExportedProgram", "description": label,
            "dims": dict(sorted(file_dims.items()))}
    if isinstance(model, torch.nn.Module):
        label = name or type(model).__name__
        _only(label, "an nn.Module", None, shaping, config, dims)
        if example_inputs is None:
            raise UsageError(f"{label}: an nn.Module needs example_inputs (a tensor, a tuple of arguments or a dict "
                             "of keyword arguments) to be traced")
        args, kwargs = _inputs(example_inputs)
        return capture_module(model, args, kwargs, name=label), {
            "name": label, "frontend": "torch.export", "source": f"{type(model).__module__}.{type(model).__qualname__}",
            "description": label}
    raise UsageError(f"cannot analyse a {kind}: pass an nn.Module with example inputs, an ExportedProgram, an "
                     "onnx.ModelProto, a Graph, a path to an .onnx/.pt2 file or a workload name")


def _capture_ref(ref: str, example_inputs, shaping, config, name, dims) -> tuple[Graph, dict[str, Any]]:
    lower = ref.lower()
    if not lower.endswith(".json") and (lower.endswith((".onnx", ".pt2")) or os.path.exists(ref)):
        _only(ref, "a model file", example_inputs, {**shaping, "batch": None, "seq": None, "kv_len": None}, config, {})
        graph, info = load_graph(ModelRequest(ref, dims=_file_dims(dims, shaping)))
    else:  # a workload name, or a Hugging Face config.json shaped like one
        _only(ref, "a workload name", example_inputs, {}, "full", dims)
        graph, info = load_graph(ModelRequest(ref, config=config, **shaping))
    if name:
        info["name"] = name
    return graph, info


def _file_dims(dims: Mapping[str, int], shaping: Mapping[str, Any]) -> dict[str, int]:
    """Named dimensions of a file; batch/seq/kv_len given as keywords are dimension names too."""
    out = {k: v for k, v in shaping.items() if k in ("batch", "seq", "kv_len") and v is not None}
    out.update(dims)
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"dimension {key}={value!r} must be an int")
    return out


def _only(label: str, what: str, example_inputs, shaping: Mapping[str, Any], config: str, dims) -> None:
    given = [k for k, v in shaping.items() if v is not None]
    if example_inputs is not None:
        given.append("example_inputs")
    if config != "full":
        given.append("config")
    if dims:
        given += [f"{k}=" for k in dims]
    if given:
        raise UsageError(f"{label}: {', '.join(given)} do not apply to {what}; example_inputs go with an nn.Module, "
                         "phase/config/batch/seq/kv_len/dtype shape a workload name, and NAME=N binds a dimension "
                         "of a file or program")


def _inputs(example_inputs: Any) -> tuple[tuple, dict]:
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


# -- analyze ----------------------------------------------------------------------------------------


def analyze(model: Any, example_inputs: Any = None, *, target: Union[str, os.PathLike, Target] = "h100",
            phase: Optional[str] = None, config: str = "full", batch: Optional[int] = None,
            seq: Optional[int] = None, kv_len: Optional[int] = None, dtype: Optional[str] = None,
            passes: Sequence[Pass] = (), name: Optional[str] = None, mode: str = "graph",
            import_modules: Sequence[str] = (), **dims: int) -> Report:
    """Capture, count and project `model` on `target`; returns the `Report`.

    Parameters
    ----------
    model, example_inputs, phase, config, batch, seq, kv_len, dtype, name, import_modules, **dims
        As in `capture`: the model in any form (an ``nn.Module`` with example inputs, an
        ``ExportedProgram``, an ``onnx.ModelProto``, a `Graph`, an ``.onnx``/``.pt2`` path, a workload name)
        and how to shape it.
    target : str, path or Target
        A bundled target name, a TOML path or a `Target`
        (``load_target("h100").with_overrides(hbm_gbps=4800)``); default ``"h100"``.
    passes : sequence of callables
        ``pass(graph) -> Graph``, run after the registered passes (see `register_pass`).
    mode : str
        The execution model (``"graph"``, ``"eager"``, ``"compiled"`` or ``"reduce-overhead"``;
        graphperf/execution.py), as the CLI's ``--mode``.

    Returns
    -------
    Report
        What the CLI renders: ``analyze("gpt2", config="tiny").to_json()`` is what ``graphperf analyze
        gpt2 --config tiny --format json`` prints.

    Raises
    ------
    UsageError
        A bad argument (unknown target, model or mode, arguments that do not apply to the model's form).
    AnalysisError
        A model that was read but could not be analysed (torch.export failure, a pass that failed or
        changed its input).

    Example
    -------
    >>> import graphperf
    >>> report = graphperf.analyze("gpt2", config="tiny", dtype="float32", target="a100")
    >>> report.totals["coverage"]
    1.0
    """
    check_mode(mode)
    _import_modules(import_modules)
    graph, info = _capture(model, example_inputs, phase=phase, config=config, batch=batch, seq=seq,
                           kv_len=kv_len, dtype=dtype, name=name, dims=dims)
    return analyze_captured(graph, _target(target), info, passes, mode)


def _target(target: Any) -> Target:
    if isinstance(target, Target):
        return target
    if isinstance(target, (str, os.PathLike)):
        return load_target(os.fspath(target))
    raise UsageError(f"target must be a target name, a .toml path or a graphperf.Target, got {type(target).__name__}")


def analyze_captured(graph: Graph, target: Target, info: Mapping[str, Any], passes: Sequence[Pass] = (),
                     mode: str = "graph") -> Report:
    """`analyze_graph` (in execution `mode`) with the registered user passes (then `passes`) run after
    canonicalization. A pass declared with `graphperf.passes.result.graph_pass` must have its ``requires`` met
    by canonicalization and the passes before it (AnalysisError naming the pass and the property otherwise)."""
    chain = [*_PASSES.items(), *((_pass_name(p), p) for p in passes)]
    if not chain:
        return analyze_graph(graph, target, dict(info), mode=mode)
    from graphperf.passes import canonicalize
    from graphperf.passes.result import check_requires

    canon = canonicalize(graph)
    rewritten = canon.graph
    ensured, ran = set(canonicalize.contract.ensures), ["canonicalize"]
    for pass_name, fn in chain:
        ensured |= check_requires(fn, ensured, ran).ensures
        rewritten = _apply(pass_name, fn, rewritten)
        ran.append(pass_name)
    # a user pass may create new foldable patterns: canonicalize its graph again (the mark would skip that)
    rewritten = Graph(rewritten.name, rewritten.nodes, rewritten.values, rewritten.outputs,
                      {k: v for k, v in rewritten.meta.items() if k != "canonical"})
    report = analyze_graph(rewritten, target, {**info, "passes": [n for n, _ in chain]}, mode=mode)
    again = report.model["canonicalized"]  # a pass may create new foldable patterns: add both runs
    report.model["canonicalized"] = {k: v + again.get(k, 0) for k, v in canon.summary().items()}
    return report


def _apply(pass_name: str, fn: Pass, graph: Graph) -> Graph:
    before = (len(graph.nodes), tuple(map(id, graph.nodes)), len(graph.values), tuple(map(id, graph.values.values())))
    try:
        result = fn(graph)
    except (UsageError, AnalysisError):
        raise
    except Exception as exc:
        raise AnalysisError(f"pass {pass_name} failed: {type(exc).__name__}: {exc}") from exc
    after = (len(graph.nodes), tuple(map(id, graph.nodes)), len(graph.values), tuple(map(id, graph.values.values())))
    if after != before:
        raise AnalysisError(f"pass {pass_name} changed its input graph; a pass must return a new Graph")
    out = result.graph if not isinstance(result, Graph) and isinstance(getattr(result, "graph", None), Graph) else result
    if not isinstance(out, Graph):
        raise AnalysisError(f"pass {pass_name} returned {type(result).__name__}; it must return a graphperf.Graph "
                            "(or an object with a .graph)")
    return out


# -- user passes ------------------------------------------------------------------------------------


def _pass_name(fn: Pass) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def register_pass(fn: Pass, *, name: Optional[str] = None) -> Pass:
    """Run `fn(graph) -> Graph` in every analysis from now on (after canonicalization, before
    counting, in registration order). Usable as a decorator; ValueError if the name is taken.

    Parameters
    ----------
    fn : callable
        ``fn(graph) -> Graph`` (or an object with a ``.graph``); it must return a new graph, never change
        its input (`AnalysisError` at analysis time otherwise). Returning the input unchanged is allowed.
    name : str, optional
        The name reports list (``report.model["passes"]``); default ``fn.__name__``.

    Returns
    -------
    callable
        `fn` itself, so it works as a decorator.

    Raises
    ------
    TypeError
        `fn` is not callable.
    ValueError
        A pass of that name is registered already.

    Example
    -------
    >>> import graphperf
    >>> sizes = []
    >>> @graphperf.register_pass
    ... def note_size(graph):
    ...     sizes.append(len(graph))
    ...     return graph
    >>> "note_size" in graphperf.registered_passes()
    True
    >>> report = graphperf.analyze("gpt2", config="tiny")
    >>> "note_size" in report.model["passes"], len(sizes)
    (True, 1)
    >>> graphperf.unregister_pass(note_size)
    """
    if not callable(fn):
        raise TypeError(f"a pass must be callable pass(graph) -> Graph, got {type(fn).__name__}")
    key = name or _pass_name(fn)
    if key in _PASSES:
        raise ValueError(f"a pass named {key!r} is already registered; unregister it first or pick another name")
    _PASSES[key] = fn
    return fn


def unregister_pass(fn_or_name: Union[Pass, str]) -> None:
    """Stop running a registered pass (given as the function or its name); KeyError if it is not.

    Parameters
    ----------
    fn_or_name : callable or str
        The registered function, or the name it was registered under.

    Returns
    -------
    None

    Raises
    ------
    KeyError
        No such pass is registered.

    Example
    -------
    >>> import graphperf
    >>> _ = graphperf.register_pass(lambda graph: graph, name="identity")
    >>> graphperf.unregister_pass("identity")
    >>> "identity" in graphperf.registered_passes()
    False
    """
    key = fn_or_name if isinstance(fn_or_name, str) else next(
        (k for k, f in _PASSES.items() if f is fn_or_name), _pass_name(fn_or_name))
    if key not in _PASSES:
        raise KeyError(f"no pass named {key!r} is registered")
    del _PASSES[key]


def registered_passes() -> list[str]:
    """Names of the registered passes, in the order they run.

    Returns
    -------
    list of str
        A copy: changing it does not change the registry.

    Example
    -------
    >>> import graphperf
    >>> _ = graphperf.register_pass(lambda graph: graph, name="identity")
    >>> graphperf.registered_passes()[-1]
    'identity'
    >>> graphperf.unregister_pass("identity")
    """
    return list(_PASSES)


# -- user cost rules --------------------------------------------------------------------------------


def register_rule(op: Any, rule: Optional[Rule] = None):
    """Give `op` (an op the report lists as unknown) the cost `rule(ins, outs, attrs) -> Cost`.

    `op` is the name the report lists (``"acme::acme.frobnicate.default"``, ``"onnx::com.acme::Frob"``),
    an `OpId`, or a torch custom op (an ``OpOverload``, or an ``OpOverloadPacket`` for all its
    overloads). `ins`/`outs` are the node's input/output `TensorType`s; the rule returns a `Cost`.
    Usable as a decorator. ValueError for an op graphperf already counts or one registered twice.

    Parameters
    ----------
    op : str, OpId or torch op
        The op, as above.
    rule : callable, optional
        ``rule(ins, outs, attrs) -> Cost``; it may raise `RuleError` for a node it does not model
        (the node stays unknown, with the message). Omitted: `register_rule` returns a decorator.

    Returns
    -------
    callable
        `rule`, or (without `rule`) a decorator that registers the function it decorates and returns it.

    Raises
    ------
    ValueError
        `op` is a canonical op (graphperf counts it already), is not spelled ``"domain::name"``, or has a
        rule already.
    TypeError
        `op` is none of the accepted forms.

    Example
    -------
    >>> import graphperf
    >>> from graphperf import Cost, Graph, Node, OpId, TensorType, Value
    >>> t = TensorType((1024,), "float32")
    >>> g = Graph("frob", [Node("f", OpId("acme", "frob"), "acme.frob", ("x",), ("y",))],
    ...           {"x": Value("x", t, kind="input"), "y": Value("y", t, producer="f")}, ["y"])
    >>> graphperf.analyze(g).totals["unknown_ops"]
    {'acme::frob': 1}
    >>> @graphperf.register_rule("acme::frob")
    ... def frob(ins, outs, attrs):
    ...     return Cost(flops=3 * outs[0].numel, bytes_read=ins[0].nbytes, bytes_written=outs[0].nbytes)
    >>> graphperf.analyze(g).totals["flops"]
    3072
    >>> graphperf.unregister_rule("acme::frob")
    """
    ops = _op_ids(op)

    def do(fn: Rule) -> Rule:
        for op_id in ops:
            register_user_rule(op_id, fn)
        return fn

    return do if rule is None else do(rule)


def unregister_rule(op: Any) -> None:
    """Remove the user rule(s) registered for `op` (same forms as `register_rule`); KeyError if none.

    Parameters
    ----------
    op : str, OpId or torch op
        As given to `register_rule` (a torch ``OpOverloadPacket`` removes every overload's rule).

    Returns
    -------
    None

    Raises
    ------
    KeyError
        No user rule is registered for `op`.

    Example
    -------
    >>> import graphperf
    >>> _ = graphperf.register_rule("acme::scale", lambda ins, outs, attrs: graphperf.Cost(flops=outs[0].numel))
    >>> graphperf.unregister_rule("acme::scale")
    >>> graphperf.unregister_rule("acme::scale")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: ...
    """
    for op_id in _op_ids(op):
        unregister_user_rule(op_id)


def _op_ids(op: Any) -> list[OpId]:
    if isinstance(op, OpId):
        return [op]
    if isinstance(op, str):
        domain, sep, rest = op.partition("::")
        if sep and domain and rest:
            return [OpId(domain, rest)]
        if op in CANONICAL:
            raise ValueError(f"{op!r} is a canonical op that graphperf already counts; user rules are for ops the "
                             "report lists as unknown, e.g. 'acme::acme.frobnicate.default'")
        raise ValueError(f"{op!r}: name the op as the report's unknown_ops lists it, 'domain::name'")
    if hasattr(op, "_schema") and hasattr(op, "namespace"):  # torch OpOverload
        from .capture.fx_nodes import source_name

        return [OpId(op.namespace, source_name(op))]
    if hasattr(op, "overloads") and callable(op.overloads):  # torch OpOverloadPacket
        return [o for name in op.overloads() for o in _op_ids(getattr(op, name))]
    raise TypeError(f"cannot name an op with a {type(op).__name__}: pass 'domain::name', an OpId or a torch op")
