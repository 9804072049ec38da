"""Data parallelism for training as a rewrite: the backward graph one device of a ``dp``-way group runs, with
PyTorch DDP's gradient all-reduces (torch.nn.parallel.DistributedDataParallel and its C++ Reducer).

Every device holds the whole model, runs its own batch through forward and backward, and the group sums the
gradients before the optimizer step. DDP does not reduce gradient by gradient: it packs the parameters into
*buckets* and all-reduces a bucket's flat gradient buffer as soon as every gradient in it is produced, so the
reduction of the late layers' gradients overlaps with the backward of the early ones. `data_parallel(graph, dp)`
places those all-reduces the way DDP does in its steady state (from the second iteration on, after the Reducer
rebuilds its buckets in the order the gradients became ready):

- parameters are taken in the order the backward produces their gradients (the position of each gradient's
  producing node in the graph: the last layers' first, roughly the reverse of ``model.parameters()``);
- a bucket is filled until its gradient bytes reach the cap (``>=``: the gradient that crosses the cap joins the
  bucket, as in the Reducer's ``compute_bucket_assignment_by_size``), then the next bucket opens; gradients of
  another dtype go to buckets of their own. The cap is ``bucket_cap_mb`` MiB (DDP's default, 25 MiB, when None);
  with DDP's default the first bucket is capped at 1 MiB (``dist._DEFAULT_FIRST_BUCKET_BYTES``: the first
  gradients reduce early), with an explicit ``bucket_cap_mb`` every bucket has that cap, as DDP does;
- bucket i is ready once all its gradients exist: right after the node that produces the last of them in graph
  order. An ``all_reduce`` (``group_size`` = dp, ring) of the bucket's flat gradient buffer, ``[elements]`` in the
  gradient dtype (its payload: the bucket's gradient bytes), is inserted after that node. The buffer is a graph
  input and the reduced buffer a graph output.

**Assumed: ``DistributedDataParallel(..., gradient_as_bucket_view=True)``**: every gradient is a view into its
bucket's flat buffer, so the buckets take no memory beyond the gradients and nothing is copied. PyTorch's default is
``gradient_as_bucket_view=False``: the Reducer then keeps the flat buffers beside the gradients (a second
gradient-sized allocation, G bytes per device for G bytes of gradients) and copies each gradient into its bucket
before the all-reduce and back after it (about 4 G bytes of HBM traffic per step). Neither is modelled: with the
default, the step is longer and the memory larger than projected by those amounts.

DDP launches the buckets' all-reduces in bucket order on one communication stream; graphperf/train/timeline.py
queues them so. The gradients are named by ``graph.meta["gradients"]`` (``[{"parameter", "value"}]``, as
graphperf/train/capture.py writes them), or by `gradients`. With ``dp == 1`` nothing is reduced: no all-reduce, no
bucket (``modified`` False).

ZeRO-1 and ZeRO-2 (graphperf/train/zero.py) keep these buckets but reduce-scatter them: with
``reduce="reduce_scatter"`` the inserted node is a ``reduce_scatter`` (group dp, ring) of the bucket's flat buffer
padded to a multiple of dp elements (``[dp * ceil(elements / dp)]``, as DeepSpeed pads its partitions), whose output
is this device's shard ``[ceil(elements / dp)]``: each device keeps the summed gradients of 1/dp of the parameters.
Refusals that stop the pass (`UsageError`, one line): dp < 1, a cap that is not a finite number > 0, a graph
that names no gradients, a gradient value that is not in the graph.

Example
-------
>>> from graphperf.ir import Graph, Node, TensorType, Value
>>> from graphperf.ops import canonical
>>> t = TensorType((1024, 1024), "float32")  # 4 MiB each
>>> values = {"x": Value("x", t, "input")} | {f"g{i}": Value(f"g{i}", t, producer=f"n{i}") for i in range(3)}
>>> nodes = [Node(f"n{i}", canonical("relu"), "relu", ("x",), (f"g{i}",)) for i in range(3)]
>>> g = Graph("bw", nodes, values, ["g0", "g1", "g2"], {"gradients": [
...     {"parameter": f"w{i}", "value": f"g{i}"} for i in (2, 1, 0)]})
>>> res = data_parallel(g, dp=8, bucket_cap_mb=6)
>>> [(b.parameters, b.nbytes, b.ready_after) for b in res.buckets]
[(('w0', 'w1'), 8388608, 'n1'), (('w2',), 4194304, 'n2')]
>>> [n.name for n in res.graph.nodes]
['n0', 'n1', 'ddp_bucket0_all_reduce', 'n2', 'ddp_bucket1_all_reduce']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical

from .result import PassResult, graph_pass

__all__ = ["DEFAULT_BUCKET_CAP_MB", "FIRST_BUCKET_BYTES", "MIB", "Bucket", "DataParallelResult", "data_parallel",
           "bucket_assignment"]

MIB = 1024 * 1024
#: DDP's default bucket cap (torch.nn.parallel.DistributedDataParallel, ``bucket_cap_mb=None``), MiB.
DEFAULT_BUCKET_CAP_MB = 25
#: DDP's first bucket with the default cap (``torch.distributed._DEFAULT_FIRST_BUCKET_BYTES``), bytes.
FIRST_BUCKET_BYTES = 1 * MIB


@dataclass(frozen=True)
class Bucket:
    """One gradient bucket: its parameters (in the order their gradients are produced), elements, bytes, dtype,
    the node after which it is ready and the collective node inserted there (field `all_reduce`; `op` says which
    collective: ``all_reduce``, or ``reduce_scatter`` for ZeRO)."""

    index: int
    parameters: tuple[str, ...]
    numel: int
    nbytes: int
    dtype: str
    ready_after: str
    all_reduce: str
    op: str = "all_reduce"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "parameters": list(self.parameters), "numel": self.numel,
                "bytes": self.nbytes, "dtype": self.dtype, "ready_after": self.ready_after,
                self.op: self.all_reduce}


@dataclass(frozen=True, kw_only=True)
class DataParallelResult(PassResult):
    """The backward graph with one all_reduce per bucket, dp, the caps used (bytes) and the buckets in order."""

    dp: int
    bucket_cap_bytes: int
    first_bucket_cap_bytes: int
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)

    @property
    def gradient_bytes(self) -> int:
        """The buckets' payloads together: every parameter gradient's bytes (0 with dp 1: nothing reduced)."""
        return sum(b.nbytes for b in self.buckets)


def bucket_caps(bucket_cap_mb: Optional[float]) -> tuple[int, int]:
    """(first bucket's cap, every other bucket's cap) in bytes: DDP's 1 MiB and 25 MiB for None, else both
    `bucket_cap_mb` MiB; UsageError for a cap that is not a finite number > 0 (inf, nan, 0)."""
    if bucket_cap_mb is None:
        return FIRST_BUCKET_BYTES, DEFAULT_BUCKET_CAP_MB * MIB
    if (isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0
            or not math.isfinite(bucket_cap_mb)):
        raise UsageError(f"--bucket-mb {bucket_cap_mb!r}: the bucket cap must be a finite positive number of MiB, "
                         "e.g. 25")
    cap = max(1, int(bucket_cap_mb * MIB))
    return cap, cap


def bucket_assignment(sizes: Sequence[tuple[str, int]], first_cap: int, cap: int) -> list[list[int]]:
    """Indices of `sizes` ((dtype, bytes) per gradient, in ready order) per bucket, DDP's
    ``compute_bucket_assignment_by_size``: per dtype, fill a bucket until its bytes reach the cap (first bucket of
    the dtype: `first_cap`), close it, go on; buckets in the order of their first gradient.

    >>> bucket_assignment([("f", 6), ("f", 6), ("f", 6), ("f", 6)], first_cap=5, cap=10)
    [[0], [1, 2], [3]]
    """
    open_: dict[str, list[int]] = {}
    filled: dict[str, int] = {}
    limit: dict[str, int] = {}
    out: list[list[int]] = []
    for i, (dtype, nbytes) in enumerate(sizes):
        bucket = open_.setdefault(dtype, [])
        bucket.append(i)
        filled[dtype] = filled.get(dtype, 0) + nbytes
        if filled[dtype] >= limit.setdefault(dtype, first_cap):
            out.append(bucket)
            open_[dtype], filled[dtype], limit[dtype] = [], 0, cap
    out += [b for b in open_.values() if b]
    return sorted(out, key=lambda b: b[0])


@graph_pass("data_parallel")
def data_parallel(graph: Graph, dp: int, bucket_cap_mb: Optional[float] = None,
                  gradients: Optional[Sequence[Mapping[str, str]]] = None,
                  reduce: str = "all_reduce") -> DataParallelResult:
    """Insert DDP's bucketed gradient all-reduces for a `dp`-way data-parallel group into the backward `graph`
    (see the module docstring); the input graph is not changed.

    Parameters
    ----------
    graph : Graph
        A backward graph whose gradients ``graph.meta["gradients"]`` names (graphperf/train/capture.py).
    dp : int
        Devices in the data-parallel group (each all_reduce's ``group_size``).
    bucket_cap_mb : float, optional
        The bucket cap in MiB; None: DDP's default (25 MiB, the first bucket 1 MiB).
    gradients : sequence of {"parameter", "value"}, optional
        The gradients, instead of ``graph.meta["gradients"]``.
    reduce : {"all_reduce", "reduce_scatter"}
        The collective per bucket: DDP's all_reduce, or ZeRO's reduce_scatter (each device keeps 1/dp).

    Returns
    -------
    DataParallelResult
        The new graph, the buckets (parameters, bytes, the node after which each is ready) and the caps.
    """
    if isinstance(dp, bool) or not isinstance(dp, int) or dp < 1:
        raise UsageError(f"--dp {dp!r}: the data-parallel degree must be an integer >= 1")
    first_cap, cap = bucket_caps(bucket_cap_mb)
    if reduce not in ("all_reduce", "reduce_scatter"):
        raise UsageError(f"reduce={reduce!r}: a bucket is reduced by all_reduce or reduce_scatter")
    grads = list(graph.meta.get("gradients") or ()) if gradients is None else list(gradients)
    if not grads:
        raise UsageError(f"{graph.name}: the graph names no gradients (meta['gradients']); data parallelism needs "
                         "a backward graph from graphperf.train.capture")
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    found = []
    for g in grads:
        value = graph.values.get(g["value"])
        if value is None or value.type is None:
            raise UsageError(f"{graph.name}: gradient {g['value']!r} of {g['parameter']} is not a value of the graph")
        found.append((order.get(value.producer, -1) if value.producer else -1, g["parameter"], value))
    found.sort(key=lambda f: f[0])  # stable: gradients of one node keep the parameters' order
    summary = {"rewrite": "data_parallel", "dp": dp, "bucket_cap_bytes": cap, "first_bucket_cap_bytes": first_cap}
    if dp == 1:
        return DataParallelResult(graph, False, [{**summary, "buckets": 0, "all_reduce": 0,
                                                  "note": "one device: no gradient to reduce"}], [],
                                  dp=1, bucket_cap_bytes=cap, first_bucket_cap_bytes=first_cap)
    indices = bucket_assignment([(v.type.dtype, v.type.nbytes) for _, _, v in found], first_cap, cap)
    values = dict(graph.values)
    after: dict[str, list[Node]] = {}
    leading: list[Node] = []  # buckets whose gradients no node produces (graph inputs): reduced first
    outputs = list(graph.outputs)
    buckets = []
    for b, members in enumerate(indices):
        dtype = found[members[0]][2].type.dtype
        numel = sum(found[i][2].type.numel for i in members)
        nbytes = sum(found[i][2].type.nbytes for i in members)
        last = max(members, key=lambda i: found[i][0])
        ready = found[last][2].producer or ""
        prefix = "ddp" if reduce == "all_reduce" else "zero"
        name = f"{prefix}_bucket{b}_{reduce}"
        flat, reduced = f"{prefix}_bucket{b}.grads", f"{prefix}_bucket{b}.reduced"
        buffer_type = out_type = TensorType((numel,), dtype)
        if reduce == "reduce_scatter":
            shard = -(-numel // dp)
            buffer_type, out_type = TensorType((dp * shard,), dtype), TensorType((shard,), dtype)
        values[flat] = Value(flat, buffer_type, "input", None, f"DDP bucket {b} (flat gradient buffer)")
        values[reduced] = Value(reduced, out_type, "activation", name)
        module = graph.nodes[found[last][0]].module if found[last][0] >= 0 else ""
        node = Node(name, canonical(reduce), f"{prefix}.{reduce}", (flat,), (reduced,),
                    {"group_size": dp, "algorithm": "ring"}, module)
        (after.setdefault(ready, []) if ready else leading).append(node)
        outputs.append(reduced)
        buckets.append(Bucket(b, tuple(found[i][1] for i in members), numel, nbytes, dtype, ready, name, reduce))
    nodes = list(leading)
    for node in graph.nodes:
        nodes.append(node)
        nodes.extend(after.get(node.name, ()))
    new = Graph(graph.name, nodes, values, outputs, {**graph.meta, "data_parallel": dp})
    summary.update({"buckets": len(buckets), reduce: len(buckets), "bytes": sum(b.nbytes for b in buckets)})
    return DataParallelResult(new, True, [summary], [], dp=dp, bucket_cap_bytes=cap, first_bucket_cap_bytes=first_cap,
                              buckets=tuple(buckets))
