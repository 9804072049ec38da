"""A sweep's table as columns (numpy arrays in grid order), written as CSV or Parquet without a Python object per
cell where pyarrow is present, and read back as rows.

`SweepTable` is what `run_sweep` returns: ``table.columns[name]`` is a column; ``len(table)``, ``table[i]``,
iteration and ``table.rows()`` give rows as dicts of Python values, built only when asked for.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Iterator

import numpy as np

from ..errors import UsageError

__all__ = ["SweepTable", "write_table", "read_rows"]


class SweepTable:
    """Columns of equal length, in order."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns
        self._length = len(next(iter(columns.values()))) if columns else 0

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return {name: _value(col[i]) for name, col in self.columns.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = list(self.columns)
        for values in zip(*(_values(col) for col in self.columns.values())):
            yield dict(zip(names, values))

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (the Python values of each cell)."""
        return list(self)


def _value(cell: Any) -> Any:
    """A cell as a Python value (ASCII bytes, the keys, as str)."""
    cell = cell.item() if isinstance(cell, np.generic) else cell
    return cell.decode() if isinstance(cell, bytes) else cell


def _values(col: np.ndarray) -> list[Any]:
    return col.astype(str).tolist() if col.dtype.kind == "S" else col.tolist()


def _arrow(table: SweepTable):
    import pyarrow as pa

    def array(col: np.ndarray):
        if col.dtype.kind == "S":  # the keys
            return pa.array(col).cast(pa.string())
        if col.dtype != object:
            return pa.array(col)
        try:
            return pa.array(col.tolist())
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # an axis of mixed values ("none" and numbers): as text
            return pa.array([None if v is None else str(v) for v in col.tolist()])

    return pa.table({name: array(col) for name, col in table.columns.items()})


def write_table(table: SweepTable, output: str, fmt: str) -> None:
    """Write `table` to `output` (`fmt` ".csv" or ".parquet") under a temporary name, then rename it."""
    tmp = output + ".tmp"
    try:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq
    except ImportError:
        if fmt == ".parquet":
            raise UsageError("-o *.parquet needs pyarrow: pip install pyarrow (or write .csv)") from None
        pq = None
    if pq is not None:
        arrow = _arrow(table)
        if fmt == ".parquet":
            pq.write_table(arrow, tmp)
        else:
            pcsv.write_csv(arrow, tmp, pcsv.WriteOptions(quoting_style="needed"))
    else:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(table.columns)
            bools = lambda v: "true" if v is True else "false" if v is False else v  # noqa: E731  as pyarrow
            writer.writerows([bools(v) for v in row.values()] for row in table)
    os.replace(tmp, output)


def read_rows(path: str) -> list[dict[str, Any]]:
    """A written sweep table as rows (CSV cells as text; Parquet typed)."""
    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
