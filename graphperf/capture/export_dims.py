"""The dynamic dimensions of an ExportedProgram, and the user's ``--dim`` values bound to them.

torch.export names each dynamic size with an internal symbol (``s77``); the user named it with
``torch.export.Dim("B", min=1, max=1024)``. `program_dims` lists one `ExportDim` per symbol that a
user input's shape uses, with every name it answers to:

- the Dim name, which only an in-memory program keeps (its shape environment's debug names):
  ``torch.export.save`` writes neither the names nor the ``dynamic_shapes`` spec (torch 2.13), so
  a program loaded from a ``.pt2`` file has symbols only;
- torch's symbol (``s77``), which is all a ``.pt2`` file keeps;
- each input axis that is exactly that size (``x.shape[0]``), a name that survives any export.

`bind_dims` turns the user's mapping (any of those names -> int) into symbol -> int, and refuses in
one line (UsageError, exit 2, wording as the ONNX frontend's): a name the program does not have
(with the close matches and the program's dimensions), a value outside the range the program was
exported for, two names given for one dimension, and a dimension left unbound (each named with its
input axes and range). Symbols no input shape holds (data-dependent sizes, ``u0``) are bound by
their symbol name and reported unbound by `shapes.DimBinder`, where the graph uses them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import sympy
import torch
from torch.export import ExportedProgram

from ..errors import UsageError
from .shapes import MAX_DIM

__all__ = ["ExportDim", "program_dims", "bind_dims"]


@dataclass(frozen=True)
class ExportDim:
    """One dynamic dimension: torch's `symbol`, the user's Dim `name` (None when the program lost it),
    the input axes that are exactly this size (`places`, ``"x.shape[0]"``), the exported range (`high`
    None: unbounded), and the input axes derived from it (`derived`, ``"y.shape[0] = 2*B"``)."""

    symbol: str
    name: Optional[str]
    places: tuple[str, ...]
    low: int
    high: Optional[int]
    derived: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The name to show and to ask for: the Dim name when known, else the symbol."""
        return self.name or self.symbol

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for n in (self.name, self.symbol, *self.places) if n))

    @property
    def range_text(self) -> str:
        return f"{self.low}..{'inf' if self.high is None else self.high}"


def _shape_env(ep: ExportedProgram) -> Any:
    from torch._guards import detect_fake_mode

    vals = [n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"]
    mode = detect_fake_mode([v for v in vals if isinstance(v, torch.Tensor)])
    return getattr(mode, "shape_env", None)


def dim_names(ep: ExportedProgram) -> dict[str, str]:
    """Symbol -> the user's Dim name, from an in-memory program's shape environment ({} after a .pt2
    round trip). A Dim's sources may have been traced as other symbols that export then unified
    (``s79 -> s77``): each is followed to the expression the graph keeps; a derived Dim (``2*B``, which
    torch allows only as a function of one root Dim) names the one symbol of its expression."""
    env = _shape_env(ep)
    debug = getattr(env, "source_name_to_debug_name", None) or {}
    out: dict[str, str] = {}
    for sym, sources in (getattr(env, "var_to_sources", None) or {}).items():
        try:
            final = env.replace(sym)
        except Exception:  # a shape environment of another torch: no names rather than a wrong one
            continue
        symbols = getattr(final, "free_symbols", ())
        if len(symbols) != 1:
            continue
        for source in sources:
            name = debug.get(source.name if isinstance(source.name, str) else source.name())
            roots = re.findall(r"[A-Za-z_]\w*", name) if isinstance(name, str) else []
            if len(roots) == 1 and (name == roots[0]) == final.is_Symbol:
                out.setdefault(str(next(iter(symbols))), roots[0])
                break
    return out


def _bound(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, sympy.Integer)) else None  # int_oo and -int_oo: None


def program_dims(ep: ExportedProgram) -> list[ExportDim]:
    """The dynamic dimensions of `ep`'s user inputs, in input and axis order."""
    user = {spec.arg.name for spec in ep.graph_signature.input_specs
            if spec.kind.name == "USER_INPUT" and hasattr(spec.arg, "name")}
    places: dict[str, list[str]] = {}
    derived: dict[str, list[str]] = {}
    for node in ep.graph.nodes:
        val = node.meta.get("val")
        if node.op != "placeholder" or node.name not in user or not isinstance(val, torch.Tensor):
            continue
        for axis, size in enumerate(val.shape):
            if isinstance(size, torch.SymInt):
                expr = size.node.expr
                for sym in sorted(expr.free_symbols, key=str):
                    where = places.setdefault(str(sym), [])
                    if expr == sym:
                        where.append(f"{node.name}.shape[{axis}]")
                    else:
                        derived.setdefault(str(sym), []).append(f"{node.name}.shape[{axis}] = {expr}")
    ranges = {str(k): v for k, v in ep.range_constraints.items() if getattr(k, "is_Symbol", False)}
    names = dim_names(ep) if places else {}
    out = []
    for sym, where in places.items():
        rng = ranges.get(sym)
        low = _bound(rng.lower) if rng is not None else None
        name = names.get(sym)
        shown = tuple(re.sub(rf"\b{sym}\b", name or sym, text) for text in derived.get(sym, ()))  # 2*B, not 2*s44
        out.append(ExportDim(sym, name, tuple(where), max(1, low or 1),
                             _bound(rng.upper) if rng is not None else None, shown))
    return out


def _axes(dim: ExportDim) -> str:
    return " and ".join(dim.places or dim.derived) or "an input size"


def _listing(dims: list[ExportDim]) -> str:
    return ", ".join(f"{d.label} ({_axes(d)}, {d.range_text})" for d in dims)


def bind_dims(where: str, ep: ExportedProgram, given: Optional[Mapping[str, int]]) -> dict[str, int]:
    """The user's `given` sizes (by Dim name, symbol or input axis) as symbol -> int; one-line UsageError
    for an unknown name, a bad or out-of-range value, a dimension named twice or one left unbound."""
    dims = program_dims(ep)
    by_alias = {alias: d for d in dims for alias in d.aliases}
    others = {str(k): ExportDim(str(k), None, (), max(1, _bound(v.lower) or 1), _bound(v.upper))
              for k, v in ep.range_constraints.items()
              if getattr(k, "is_Symbol", False) and str(k) not in {d.symbol for d in dims}}
    out: dict[str, int] = {}
    named: dict[str, str] = {}  # symbol -> the key that bound it
    for key, value in (given or {}).items():
        dim = by_alias.get(key)
        if dim is None:
            if key in others:  # a symbol no input holds (a data-dependent u0): DimBinder reports it if unbound
                out[key] = _checked(where, key, value, others[key])
                continue
            raise UsageError(f"{where}: {_unknown(key, dims, any(d.name for d in dims))}")
        if dim.symbol in named:
            raise UsageError(f"{where}: --dim {named[dim.symbol]} and --dim {key} name the same dimension "
                             f"({dim.label}, {', '.join(dim.places)}); pass one of them")
        named[dim.symbol] = key
        out[dim.symbol] = _checked(where, key, value, dim)
    missing = [d for d in dims if d.symbol not in out]
    if missing:
        what = "; ".join(f"{_axes(d)} {'are' if len(d.places) > 1 else 'is'} dynamic ({d.label}, {d.range_text})"
                         for d in missing)
        flags = " ".join(f"--dim {d.label}=VALUE" for d in missing)
        raise UsageError(f"{where}: {what}: pass {flags}")
    return out


def _checked(where: str, key: str, value: Any, dim: Optional[ExportDim]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
        raise UsageError(f"{where}: dimension {key}={value!r} must be an integer from 1 to 2**31")
    if dim is not None and (value < dim.low or (dim.high is not None and value > dim.high)):
        upto = "" if dim.high is None else f" to {dim.high}"
        raise UsageError(f"{where}: --dim {key}={value} is outside the range {dim.label} was exported for "
                         f"({dim.range_text}, {_axes(dim)}): pass a value from {dim.low}{upto} or re-export with a "
                         "wider torch.export.Dim")
    return int(value)


def _unknown(key: str, dims: list[ExportDim], names_kept: bool) -> str:
    if not dims:
        return f"dimension '{key}' is not in the model; its dynamic dimensions are: none (all its input shapes are " \
            "static)"
    aliases = {a.lower(): a for d in dims for a in d.aliases}
    close = [aliases[a] for a in difflib.get_close_matches(key.lower(), list(aliases), n=3)]
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    lost = "" if names_kept else \
        " (a .pt2 file does not keep torch.export.Dim names: use the symbol or the input axis)"
    return f"dimension '{key}' is not in the model; {hint}its dynamic dimensions are: {_listing(dims)}{lost}"
