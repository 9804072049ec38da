"""A spec's grid as arrays: which axes split it into groups, which vary inside a group, where each point sits
in grid order, and each point's key, all computed for many points at once.

- A *vector* axis is a ``target.FIELD`` whose field is a float and whose values are all numbers: inside a group
  its values are numpy arrays (graphperf/sweep/vector.py `Variants`). Every other axis (the shape axes, mode,
  target, an integer, boolean or ``none`` target field) is a *group* axis: one group per combination of their
  values, so a group shares its captured graph, its mode, its base target and its structure.
- Grid order is the cross product in spec order, the last axis fastest; a point of a group is its index ``j``
  in the cross product of the vector axes, and its position in the grid is a sum of index x stride.
- A point's key is a hash of its axis values, independent of the axes' order: each (axis, value) is hashed once
  (`_value_hashes`: a number from its 64 bits and its type, mixed with the axis name's SHA-256; anything else the
  first 8 bytes of SHA-256 of its JSON), and a point's key folds its values' hashes, axes sorted by name, through
  splitmix64's finalizer: ``k = mix(k ^ h)``. `point_key` is the same on one point.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Any, Iterator

import numpy as np

__all__ = ["Grid", "point_key", "hex_keys", "is_vector_axis"]

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _value_hashes(axis: str, values: list[Any]) -> np.ndarray:
    """The hash of each (axis, value): an integer or a float (numbers of different types differ, as their JSON
    does) from its 64 bits, mixed with the axis's seed; anything else from SHA-256 of its JSON."""
    seed = np.uint64(_digest(axis))
    out = np.empty(len(values), np.uint64)
    ints = np.array([type(v) is int and -2**63 <= v < 2**63 for v in values], dtype=bool)
    floats = np.array([type(v) is float for v in values], dtype=bool)
    if ints.any():
        bits = np.array([v for v, i in zip(values, ints) if i], dtype=np.int64).view(np.uint64)
        out[ints] = _mix(_mix(seed ^ bits) ^ np.uint64(1))
    if floats.any():
        bits = np.array([v for v, f in zip(values, floats) if f], dtype=np.float64).view(np.uint64)
        out[floats] = _mix(_mix(seed ^ bits) ^ np.uint64(2))
    for i in np.flatnonzero(~(ints | floats)):
        out[i] = _digest(json.dumps([axis, values[i]], default=str))
    return out


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 arrays (multiplication wraps modulo 2**64)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def hex_keys(keys: np.ndarray) -> np.ndarray:
    """uint64 keys as 16-digit hex strings (ASCII bytes, 16 a key; `SweepTable` gives them as str)."""
    return np.frombuffer(keys.astype(">u8").tobytes().hex().encode("ascii"), dtype="S16")


def point_key(point: dict[str, Any]) -> str:
    """The key of one point {axis: value} (the module docstring)."""
    k = np.zeros(1, np.uint64)
    for axis in sorted(point):
        k = _mix(k ^ _value_hashes(axis, [point[axis]]))
    return hex_keys(k)[0].decode()


def is_vector_axis(axis: str, values: list[Any]) -> bool:
    """True for a ``target.FIELD`` axis of a float field whose values are all numbers (module docstring)."""
    from ..target import _SCALARS

    field = axis.removeprefix("target.")
    return (axis.startswith("target.") and _SCALARS.get(field, (None,))[0] is float
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))


class Grid:
    """The grid of `axes` ({axis: values}, spec order)."""

    def __init__(self, axes: dict[str, list[Any]]):
        self.names = list(axes)
        self.values = [list(v) for v in axes.values()]
        self.lengths = [len(v) for v in self.values]
        self.points = math.prod(self.lengths)
        self.strides = [math.prod(self.lengths[i + 1:]) for i in range(len(self.names))]
        self.vector = [i for i, a in enumerate(self.names) if is_vector_axis(a, self.values[i])]
        self.group = [i for i in range(len(self.names)) if i not in self.vector]
        self.group_points = math.prod(self.lengths[i] for i in self.vector)
        self._hashes = [_value_hashes(a, vals) for a, vals in zip(self.names, self.values)]
        self._order = sorted(range(len(self.names)), key=lambda i: self.names[i])

    def groups(self) -> Iterator[tuple[int, ...]]:
        """Each group as the indices of its group axes' values (in grid order of the groups)."""
        return itertools.product(*(range(self.lengths[i]) for i in self.group))

    def group_values(self, g: tuple[int, ...]) -> dict[str, Any]:
        """{axis: value} of the group axes of group `g`."""
        return {self.names[i]: self.values[i][k] for i, k in zip(self.group, g)}

    def indices(self, g: tuple[int, ...], j: np.ndarray) -> list:
        """Per axis, the value index of points `j` of group `g` (an int for a group axis, an array otherwise)."""
        out: list = [0] * len(self.names)
        for i, k in zip(self.group, g):
            out[i] = k
        if self.vector:
            for i, idx in zip(self.vector, np.unravel_index(j, [self.lengths[i] for i in self.vector])):
                out[i] = idx
        return out

    def positions(self, g: tuple[int, ...], j: np.ndarray) -> np.ndarray:
        """The grid positions of points `j` of group `g`."""
        pos = np.zeros(len(j), np.int64)
        for i, idx in enumerate(self.indices(g, j)):
            pos += np.int64(self.strides[i]) * idx
        return pos

    def keys(self, g: tuple[int, ...], j: np.ndarray) -> np.ndarray:
        """The uint64 keys of points `j` of group `g`."""
        idx = self.indices(g, j)
        k = np.zeros(len(j), np.uint64)
        for i in self._order:
            k = _mix(k ^ self._hashes[i][idx[i]])
        return k

    def all_keys(self) -> np.ndarray:
        """The key of every point, in grid order."""
        idx = np.unravel_index(np.arange(self.points), self.lengths)
        k = np.zeros(self.points, np.uint64)
        for i in self._order:
            k = _mix(k ^ self._hashes[i][idx[i]])
        return k

    def column(self, i: int) -> np.ndarray:
        """Axis `i`'s value at every point, in grid order (the spec's values, typed when they share a type)."""
        values = self.values[i]
        kinds = {type(v) for v in values}
        arr = np.empty(len(values), dtype=kinds.pop() if len(kinds) == 1 and kinds <= {int, float, bool} else object)
        arr[:] = values  # text as references to the spec's strings: 8 bytes a point
        return np.repeat(np.tile(arr, self.points // (self.lengths[i] * self.strides[i])), self.strides[i])
