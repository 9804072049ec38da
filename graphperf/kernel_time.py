"""Size-aware kernel time: how long one node's kernel runs on the device (`device_s`), by shape.

A plain roofline gives every GEMM the same fraction of peak and every memory-bound kernel the same
bandwidth. Measured on an H200 (shared/h200: kernel sweeps and torch.profiler traces) neither holds:
small GEMMs lose to wave quantization, GEMVs and tiny kernels to a fixed cost, misaligned GEMMs run
slow fallback kernels, broadcasts and concatenations run PyTorch's non-vectorized copy path, row
kernels (norms, softmax, reductions, cuDNN's per-channel batch norm) reach less bandwidth than a stream. This module models each of
those as one mechanism with per-target parameters (`KernelParams`, read from the target file), the
same code for every model:

Matrix kernels (matmul, implicit-GEMM convolution)::

    tiles       = batch * ceil(M / Mt) * ceil(N / Nt)          for (Mt, Nt) in GEMM_TILES
    split       = the largest power of two s with tiles * s <= units and K / s >= SPLIT_K_MIN (128)
                  (cuBLAS splits K when the output tiles cannot fill the machine)
    waves       = ceil(tiles * split / units)
    compute_s   = waves * 2 * Mt * Nt * ceil(K / split) / (unit_rate * reuse)   (padded tiles compute in full)
    reuse       = min(1, Mt * Nt / (Mt + Nt) / FULL_RATE_REUSE)       (small tiles: operand bandwidth)
    memory_s    = (A + B + C + bias + split partials) / stream bandwidth
    device_s    = max(compute_s, memory_s) over the best tile + matrix_floor

``unit_rate`` = matrix peak at the dtype * matrix efficiency of the op family / units, times
``misaligned_matrix_factor`` when a GEMM dimension's byte stride is not a multiple of 16
(`graphperf.alignment`): cuBLAS then runs an align1 kernel. A float32 convolution runs on TF32 when
the target says so (``allow_tf32_conv``, PyTorch's cuDNN default), as a float32 matmul does with
``allow_tf32``.

Attention (flash kernel, one query tile of FLASH_TILE rows per unit at a time, key tiles of
FLASH_TILE)::

    work(tile)  = visited key tiles * 2 * Mt * Nt * (E + Ev) / unit_rate  (causal: up to the diagonal)
    compute_s   = sum over waves of the longest tile in the wave, tiles longest first
    memory_s    = (q + k + v + out + mask) / stream bandwidth
    device_s    = max(compute_s, memory_s) + matrix_floor

Bytes are the counted bytes, less an input the node takes twice (``x * x``: one DRAM read feeds both uses).

Every other kernel streams its bytes::

    device_s    = max(vector compute, bytes / (hbm * efficiency of its class)) + kernel_floor

with classes `stream` (vectorized elementwise, copies, gathers: ``memory_efficiency``, ``kernel_floor_us``),
`strided` (an elementwise op with a broadcast operand, casts, concatenation, padding, layout copies,
pooling: ``memory_efficiency_strided``, ``kernel_floor_strided_us``) and `row` (softmax, norms, batch norm,
reductions: ``memory_efficiency_row``, ``kernel_floor_row_us``); a class without its own figure takes the
stream one. GEMV-like GEMMs and decode attention are the memory_s side of the first two models.

A target without ``compute_units`` or without ``kernel_floor_us`` keeps the plain roofline
(`graphperf.project`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from .ops import BROADCASTING_OPS, ROW_KERNEL_OPS, STRIDED_KERNEL_OPS

__all__ = ["KernelParams", "gemm_candidates", "attention_waves", "GEMM_TILES", "SIMT_TILES", "FULL_RATE_REUSE", "FLASH_TILE",
           "SPLIT_K_MIN", "kernel_params", "stream_class", "gemm_time", "attention_time", "stream_memory_s"]

#: Output tiles (Mt, Nt) of the GEMM kernels the model chooses from: Hopper/Ampere cuBLAS and CUTLASS
#: main-loop tiles for large problems (small problems are memory-bound, where the tile does not matter).
GEMM_TILES = ((128, 256), (256, 128), (128, 128))
#: Tiles of GEMMs that run on the vector units (float32 without TF32: cuBLAS's SIMT kernels use small tiles).
SIMT_TILES = ((128, 128), (64, 64))
#: A tile of Mt x Nt outputs reuses each operand element Mt*Nt/(Mt+Nt) times; below this reuse the unit's
#: operand bandwidth (shared memory to registers), not its math, limits the tile's rate.
FULL_RATE_REUSE = 64.0

#: Query and key rows per flash-attention tile (FlashAttention-2 and cuDNN's flash kernels at head dim 64-128).
FLASH_TILE = 128
#: cuBLAS does not split K into slices shorter than this (elements).
SPLIT_K_MIN = 128



@dataclass(frozen=True)
class KernelParams:
    """The target's figures the kernel model uses, in base units."""

    units: int
    stream_bytes_per_s: float  # hbm * memory_efficiency
    strided_bytes_per_s: float  # hbm * memory_efficiency_strided
    row_bytes_per_s: float  # hbm * memory_efficiency_row
    floor_s: Mapping[str, float]  # per stream class: stream, strided, row
    matrix_floor_s: float
    misaligned_factor: float


def kernel_params(target) -> Optional[KernelParams]:
    """The size-aware parameters of `target`, or None when it has no compute units (plain roofline)."""
    if not target.compute_units or target.kernel_floor_us is None:
        return None
    hbm = target.hbm_bytes_per_s
    mem = target.memory_efficiency
    floor_us = target.kernel_floor_us
    return KernelParams(
        units=target.compute_units,
        stream_bytes_per_s=hbm * mem,
        strided_bytes_per_s=hbm * _or(target.memory_efficiency_strided, mem),
        row_bytes_per_s=hbm * _or(target.memory_efficiency_row, mem),
        floor_s={"stream": floor_us * 1e-6, "strided": _or(target.kernel_floor_strided_us, floor_us) * 1e-6,
                 "row": _or(target.kernel_floor_row_us, floor_us) * 1e-6},
        matrix_floor_s=_or(target.matrix_floor_us, floor_us) * 1e-6,
        misaligned_factor=1.0 if target.misaligned_matrix_factor is None else target.misaligned_matrix_factor,
    )


def _or(value: Optional[float], default: float) -> float:
    return default if value is None else value


def stream_class(op: str, input_shapes, output_shape) -> str:
    """`stream`, `strided` or `row`: the memory path a non-matrix kernel takes (module docstring). The shapes
    are read for `BROADCASTING_OPS` only (None elsewhere is fine)."""
    if op in ROW_KERNEL_OPS:
        return "row"
    if op in STRIDED_KERNEL_OPS:
        return "strided"
    if op in BROADCASTING_OPS and output_shape is not None:
        for shape in input_shapes:
            if shape is not None and tuple(shape) != tuple(output_shape) and math.prod(shape) > 1:
                return "strided"
    return "stream"


def stream_memory_s(bytes_moved: float, klass: str, prm: KernelParams) -> float:
    """Memory time of a streaming kernel of class `klass`; its device time is max(vector compute, this) + the
    class floor ``prm.floor_s[klass]``."""
    rate = {"stream": prm.stream_bytes_per_s, "strided": prm.strided_bytes_per_s, "row": prm.row_bytes_per_s}[klass]
    return bytes_moved / rate


def gemm_candidates(batch: int, m: int, n: int, k: int, units: int,
                    simt: bool = False) -> list[tuple[tuple[int, int, int], int, float, int]]:
    """The rate-independent part of `gemm_time`, per candidate tile: ((Mt, Nt, split), the FLOPs one unit runs
    over all waves, the tile's operand reuse, the fp32 partial-sum bytes of split-K). A candidate's compute time
    is ``flops / (unit_flops_per_s * reuse)`` and its memory time ``(bytes_moved + partials) / stream rate``."""
    out = []
    for mt, nt in SIMT_TILES if simt else GEMM_TILES:
        tiles = batch * -(-m // mt) * -(-n // nt)
        split = 1
        while tiles * split * 2 <= units and k // (split * 2) >= SPLIT_K_MIN:
            split *= 2
        waves = -(-tiles * split // units)
        reuse = min(1.0, mt * nt / (mt + nt) / FULL_RATE_REUSE)
        partials = 2 * 4 * batch * m * n * split if split > 1 else 0  # fp32 partial sums written and read back
        out.append(((mt, nt, split), waves * 2 * mt * nt * -(-k // split), reuse, partials))
    return out


def gemm_time(batch: int, m: int, n: int, k: int, bytes_moved: float, unit_flops_per_s: float,
              prm: KernelParams, simt: bool = False) -> tuple[float, float, tuple[int, int, int]]:
    """(compute_s, memory_s, (Mt, Nt, split)) of the best GEMM tile (`gemm_candidates`: the one whose slower
    side is fastest, the first on a tie); `bytes_moved` = A + B + C (+ bias); `simt`: the GEMM runs on the
    vector units (SIMT_TILES)."""
    best = None
    for tile, flops, reuse, partials in gemm_candidates(batch, m, n, k, prm.units, simt):
        compute_s = flops / (unit_flops_per_s * reuse)
        memory_s = (bytes_moved + partials) / prm.stream_bytes_per_s
        key = max(compute_s, memory_s)
        if best is None or key < best[0]:
            best = (key, compute_s, memory_s, tile)
    return best[1], best[2], best[3]


def attention_waves(bh: int, l: int, s: int, e: int, ev: int, causal: bool, units: int) -> tuple[int, list[int], float]:
    """The rate-independent part of `attention_time`: (FLOPs of one tile visit, the K/V tiles the longest query
    tile of each wave visits, the decode scale ``l / FLASH_TILE`` or 1.0)."""
    t = FLASH_TILE
    q_tiles, k_tiles = -(-l // t), -(-s // t)
    offset = s - l
    if causal:
        visits = sorted((min(k_tiles, -(-(offset + min((i + 1) * t, l)) // t)) for i in range(q_tiles)), reverse=True)
    else:
        visits = [k_tiles] * q_tiles
    # tiles longest first; every (batch, head) has the same list: wave w holds tiles w*units .. (w+1)*units-1
    longest = [visits[start // bh] for start in range(0, bh * q_tiles, units)]
    return 2 * t * t * (e + ev), longest, (l / t if l < t else 1.0)  # decode-like: the query tile is mostly padding


def attention_time(bh: int, l: int, s: int, e: int, ev: int, causal: bool, bytes_moved: float,
                   unit_flops_per_s: float, prm: KernelParams) -> tuple[float, float]:
    """(compute_s, memory_s) of a flash-attention kernel; queries are the last `l` of `s` positions."""
    tile_flops, longest, scale = attention_waves(bh, l, s, e, ev, causal, prm.units)
    per_tile = tile_flops / unit_flops_per_s
    compute_s = 0.0
    for visits in longest:
        compute_s += visits * per_tile  # the longest tile of the wave (tiles sorted by visits)
    if scale != 1.0:
        compute_s *= scale
    memory_s = bytes_moved / prm.stream_bytes_per_s
    return compute_s, memory_s
