"""`Cost`: what one node does, as counted by a cost rule.

Conventions (README "Counting conventions"): a FLOP is one add or one multiply, so a
multiply-add is 2; `matrix_flops` is the part of `flops` that runs on a matrix unit
(matmul, convolution, attention matmuls); transcendentals (exp, log, erf, tanh, rsqrt, ...)
are counted apart from `flops`; bytes are what one unfused kernel moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from .ir import TensorType

__all__ = ["Cost", "io_bytes", "WORK_FIGURES"]

#: The work a node does, as opposed to the bytes it moves: what a fused group sums over its members
#: (passes/fusion.py) and what a `fused` node carries in its ``cost`` attribute (rules/fused.py).
WORK_FIGURES = ("flops", "matrix_flops", "transcendentals")


@dataclass(frozen=True, slots=True)
class Cost:
    """What one node does: FLOPs, transcendentals and bytes moved, as a cost rule counts them.

    Costs add (``a + b``) and `Cost.zero()` is the identity, so a group's cost is the sum of its
    members'. The conventions are the module's (a multiply-add is 2 FLOPs).

    Attributes
    ----------
    flops : int
        Adds and multiplies, matrix work included.
    matrix_flops : int
        The part of `flops` that runs on a matrix unit (matmul, convolution, attention matmuls).
    transcendentals : int
        exp, log, erf, tanh, rsqrt, ..., counted apart from `flops`.
    bytes_read, bytes_written : int
        What one unfused kernel reads and writes.
    vector_flops : int
        ``flops - matrix_flops`` (read-only property).
    bytes : int
        ``bytes_read + bytes_written`` (read-only property).

    Raises
    ------
    ValueError
        A negative field, or `matrix_flops` above `flops`.

    Example
    -------
    >>> from graphperf import Cost
    >>> mm = Cost(flops=2 * 4 * 8 * 16, matrix_flops=2 * 4 * 8 * 16, bytes_read=768, bytes_written=256)
    >>> c = mm + Cost(flops=32)
    >>> c.flops, c.vector_flops, c.bytes
    (1056, 32, 1024)
    >>> Cost.zero() + c == c
    True
    """

    flops: int = 0
    matrix_flops: int = 0
    transcendentals: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def __post_init__(self) -> None:
        if self.matrix_flops > self.flops:
            raise ValueError(f"matrix_flops {self.matrix_flops} exceeds flops {self.flops}")
        for field in ("flops", "matrix_flops", "transcendentals", "bytes_read", "bytes_written"):
            if getattr(self, field) < 0:
                raise ValueError(f"negative {field}")

    @staticmethod
    def zero() -> "Cost":
        """The cost of a node that does nothing (the identity of ``+``)."""
        return _ZERO

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(
            self.flops + other.flops,
            self.matrix_flops + other.matrix_flops,
            self.transcendentals + other.transcendentals,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
        )

    @property
    def vector_flops(self) -> int:
        """FLOPs that run on the vector unit: ``flops - matrix_flops``."""
        return self.flops - self.matrix_flops

    @property
    def bytes(self) -> int:
        """Bytes moved: ``bytes_read + bytes_written``."""
        return self.bytes_read + self.bytes_written


_ZERO = Cost()


def io_bytes(ins: Iterable[Optional[TensorType]], outs: Iterable[Optional[TensorType]]) -> Cost:
    """The default byte count: every input read once, every output written once."""
    return Cost(
        bytes_read=sum(t.nbytes for t in ins if t is not None),
        bytes_written=sum(t.nbytes for t in outs if t is not None),
    )
