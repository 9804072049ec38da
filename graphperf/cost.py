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

__all__ = ["Cost", "io_bytes"]


@dataclass(frozen=True, slots=True)
class Cost:
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
        return self.flops - self.matrix_flops

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written


_ZERO = Cost()


def io_bytes(ins: Iterable[Optional[TensorType]], outs: Iterable[Optional[TensorType]]) -> Cost:
    """The default byte count: every input read once, every output written once."""
    return Cost(
        bytes_read=sum(t.nbytes for t in ins if t is not None),
        bytes_written=sum(t.nbytes for t in outs if t is not None),
    )
