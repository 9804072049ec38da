"""The one pass contract: every pass returns a `PassResult`, every refusal is a `Refusal`, every pass declares
what it needs and what it leaves behind.

- `PassResult(graph, modified, rewrites, refused)`: the new `Graph` (a pass never mutates its input),
  whether it differs from the input (`modified`), the records the pass emits for the what-if report
  (`rewrites`, each a dict with a ``"rewrite"`` key) and what it declined to do (`refused`). The
  passes' own result classes (`FusionResult`, `TilingResult`, ...) are subclasses that keep their extra
  figures.
- `Refusal(rule, kind, reason, where)`: which pass or fusion rule refused (`rule`), why in one word
  (`kind`, a `RefusalKind`: an unknown kind is a bug and raises ValueError) and in a sentence (`reason`),
  and where (`where`: the keys a pass attaches, e.g. ``producer``/``consumer``, ``node``, ``nodes``,
  ``group``, ``size``). It reads as the read-only mapping ``{"rule", "kind", **where, "reason"}``
  (`to_dict`), the shape the what-if JSON and HTML reports have always written.
- `graph_pass(name, requires=..., ensures=...)` attaches a `PassContract` to a pass function;
  `check_requires` (run by `passes.rewrite.run_passes` before each pass) raises `AnalysisError` naming the
  pass, the missing property and the passes that ran before it. ``"canonical"`` is ensured by
  `canonicalize` and required by the rewrites that pattern-match the canonical op set.

Guarantees: this module imports only the IR and the error types, so every pass can import it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Iterable, Iterator

from graphperf.errors import AnalysisError
from graphperf.ir import Graph

__all__ = ["RefusalKind", "Refusal", "PassResult", "PassContract", "as_dict", "graph_pass", "contract_of",
           "check_requires"]


class RefusalKind(StrEnum):
    """Why a pass declined a candidate, in one word (the reason says it in a sentence)."""

    # fusion (passes/fusion.py and its rules)
    UNCOUNTED = "uncounted"  # a member has no cost rule
    CYCLE = "cycle"  # the group would not be convex
    ITERATION_SPACE = "iteration_space"  # producer and consumer iterate over different spaces
    JOINED_ANOTHER_GROUP = "joined_another_group"
    TOO_SMALL = "too_small"  # a named group of fewer than two working nodes
    SCORES_ESCAPE = "scores_escape"  # attention scores read outside the chain
    CAPACITY = "capacity"  # the kernel's on-chip working set does not fit
    CAPACITY_UNKNOWN = "capacity_unknown"  # no target figure to check the on-chip working set against
    # padding (passes/pad.py)
    ALIGNED = "aligned"
    NOT_FOUND = "not_found"
    FIXED_COST = "fixed_cost"
    GROUPED_CONV = "grouped_conv"
    # tiling (passes/tiling.py)
    OP = "op"  # not a matmul, conv or attention node
    SHAPE = "shape"  # shapes the tile model cannot read
    TARGET = "target"  # the target lacks a figure the tile model needs
    INFEASIBLE = "infeasible"  # an explicit tile that does not fit on chip
    NO_FIT = "no_fit"  # no candidate tile fits on chip
    # tensor parallelism (passes/shard.py)
    REPLICATED = "replicated"  # a node that cannot be split: its inputs are gathered and it runs in full
    # sequence parallelism (passes/sequence_parallel.py)
    INDIVISIBLE = "indivisible"  # the step's tokens do not divide over the group


_NODE_KEYS = ("producer", "consumer", "node", "nodes")


@dataclass(frozen=True, eq=False)
class Refusal(Mapping):
    """One declined candidate: the rule that refused it, a `RefusalKind`, the reason and where it sat.

    Read-only mapping over `to_dict()`, so ``r["kind"]``, ``r.get("node")`` and ``"producer" in r`` read it
    as the dict the passes used to emit; it equals that dict.

    >>> r = Refusal("norm", "capacity", "a row does not fit", {"nodes": ["pow", "mean"]})
    >>> r.kind is RefusalKind.CAPACITY, r["kind"], r.nodes
    (True, 'capacity', ('pow', 'mean'))
    >>> list(r)
    ['rule', 'kind', 'nodes', 'reason']
    """

    rule: str
    kind: RefusalKind
    reason: str
    where: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            kind = RefusalKind(self.kind)
        except ValueError:
            raise ValueError(f"refusal kind {self.kind!r} of rule {self.rule!r} is not a RefusalKind; add it to "
                             "passes/result.py") from None
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "where", dict(self.where))

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node names the refusal concerns (producer, consumer, node, nodes), in that order."""
        out: list[str] = []
        for key in _NODE_KEYS:
            v = self.where.get(key)
            for name in ([] if v is None else [v] if isinstance(v, str) else v):
                if name not in out:
                    out.append(name)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """``{"rule", "kind", **where, "reason"}``: the record the what-if JSON and HTML reports write."""
        return {"rule": self.rule, "kind": self.kind.value, **self.where, "reason": self.reason}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.where) + 3


def as_dict(r: Mapping[str, Any]) -> dict[str, Any]:
    """A refusal (or an already plain dict) as a plain dict, for JSON."""
    return r.to_dict() if isinstance(r, Refusal) else dict(r)


@dataclass(frozen=True)
class PassResult:
    """What every pass returns: the new graph, whether it changed, the rewrite records and the refusals.

    `rewrites` and `refused` are lists (the rewrite chain extends its own with them); treat them as read-only.
    """

    graph: Graph
    modified: bool
    rewrites: list[dict] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True)
class PassContract:
    """A pass's name, the graph properties it needs (`requires`) and the ones it leaves (`ensures`)."""

    name: str
    requires: frozenset[str] = frozenset()
    ensures: frozenset[str] = frozenset()


def graph_pass(name: str, requires: Iterable[str] = (), ensures: Iterable[str] = ()) -> Callable:
    """Decorator: attach a `PassContract` to a pass function (as ``fn.contract``)."""
    contract = PassContract(name, frozenset(requires), frozenset(ensures))

    def mark(fn: Callable) -> Callable:
        fn.contract = contract
        return fn

    return mark


def contract_of(step: Callable) -> PassContract:
    """The contract of a pass, or of a `functools.partial` of one; a pass without one requires and ensures nothing."""
    fn = step
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "contract", None) or PassContract(getattr(fn, "__name__", type(fn).__name__))


def check_requires(step: Callable, ensured: Iterable[str], ran: Iterable[str] = ()) -> PassContract:
    """`step`'s contract; AnalysisError when it requires a property no pass before it ensured."""
    contract = contract_of(step)
    missing = sorted(contract.requires - set(ensured))
    if missing:
        ran = list(ran)
        hint = "; run canonicalize first" if "canonical" in missing else ""
        raise AnalysisError(f"pass {contract.name} requires a {' and '.join(missing)} graph, which no pass before "
                            f"it ensures (ran before it: {', '.join(ran) or 'none'}){hint}")
    return contract
