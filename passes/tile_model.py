"""The tile model: latency of one GEMM or flash-attention kernel for one tile size on one machine.

Pure arithmetic on shapes and machine figures (no graph, no target loading), so every formula
can be checked by hand. Everything is per kernel; `latency_s` includes the launch overhead.

GEMM ``batch x (M x K) @ (K x N)`` with tile ``(Mt, Nt, Kt)`` and ``stages`` pipeline stages:

    on-chip bytes = stages * (Mt*Kt*ea + Kt*Nt*eb) + Mt*Nt*acc      (acc = 4: fp32 accumulator)
      must be <= the machine's on-chip memory per unit; the accumulator is counted against it too,
      which is exact on scratchpad machines and conservative on GPUs (registers hold it there).
    tiles         = batch * ceil(M/Mt) * ceil(N/Nt)          (one output tile per unit at a time)
    waves         = ceil(tiles / units)
    tile compute  = 2 * Mt * Nt * ceil(K/Kt)*Kt / unit rate   (padded tiles compute in full)
    compute_s     = waves * tile compute                     (wave quantization)
    DRAM bytes    = A reads + B reads + C (written once) + bias (read once)
      Every output tile streams its Mt x K panel of A and its K x Nt panel of B. An operand of which
      one batch entry fits in L2 is fetched from DRAM once. A larger one is re-read, but only
      across waves: the units of one wave stream the same K-slabs at the same time, so a panel that
      several tiles of one wave share comes from DRAM once for that wave (L2 then needs only the
      slabs in flight). Tiles are issued in row-major order (tile t: row t // ceil(N/Nt), column
      t % ceil(N/Nt)), a wave being `units` consecutive tiles, so
        A reads = sum over waves of (distinct tile rows in the wave) * (bytes of one A row panel)
        B reads = sum over waves of (distinct tile columns in the wave) * (bytes of one B column panel)
      With no L2 at all (l2_bytes = 0) nothing is shared: every batch entry reads A ceil(N/Nt) times
      and B ceil(M/Mt) times (an operand shared by the entries is read again by each).
    memory_s      = DRAM bytes / (bandwidth * memory efficiency)
    exposed_s     = fill + drain + floor: software pipelining overlaps loads, MMAs and stores in steady
                    state, except the first K-stage of the first wave (nothing to compute before it
                    arrives: its distinct bytes, at most the whole first stage of A and B) and the
                    output tiles of the last wave (nothing left to overlap their store with); floor is
                    the machine's fixed device time per kernel (0 unless the target gives one).
    latency_s     = max(compute_s, memory_s) + exposed_s + launch overhead

Flash attention, ``bh`` query heads of ``L`` queries over ``S`` keys, head dims ``E`` (q, k) and
``Ev`` (v), tile ``(Mt, Nt, Kt)`` = (query rows, key rows, head-dim step; E and Ev are padded to
multiples of Kt). One unit owns a query tile, keeps its Q tile, running scores and output
accumulator on chip, and streams the K/V tiles (``stages`` of them in flight):

    on-chip bytes = Mt*E'*e + stages * Nt*(E'+Ev')*e + Mt*Nt*4 + Mt*Ev'*4  (scores, acc in fp32)
    tiles         = bh * ceil(L/Mt);   key tiles visited per query tile = ceil(S/Nt), about half
                    of them under causal masking (the mean of ceil((i+1)*Mt/Nt) over query tiles i)
    tile compute  = key tiles * (2*Mt*Nt*E' + 2*Mt*Nt*Ev') / unit rate
    DRAM bytes    = q + out + other inputs once, K/V once if one head's K and V fit in L2, else once
                    per query tile (bh * query tiles * visited key rows * (E + Ev) * e)

``unit rate`` is the matrix peak at the dtype / units * matrix efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Machine", "Gemm", "Attention", "TileEstimate", "ACC_BYTES", "estimate", "spread"]

ACC_BYTES = 4  # fp32 accumulators (and attention scores) on chip


@dataclass(frozen=True)
class Machine:
    """What the tile model needs of a target, already derated and in base units."""

    units: int
    onchip_bytes: float  # on-chip memory per unit
    l2_bytes: float  # 0 when the target states no L2
    unit_flops_per_s: float  # matrix rate of one unit at the node's dtype, efficiency applied
    bytes_per_s: float  # DRAM bandwidth, efficiency applied
    overhead_s: float
    stages: int = 2  # double buffering: the fewest stages that overlap loads with compute
    floor_s: float = 0.0  # fixed device time of a kernel (the target's matrix_floor_us), exposed like fill/drain


@dataclass(frozen=True)
class Gemm:
    """One GEMM problem as the tile model reads it: ``batch x (m x k) @ (k x n)``, element sizes and DRAM bytes."""

    batch: int
    m: int
    n: int
    k: int
    a_elem_bytes: float
    b_elem_bytes: float
    a_bytes: int  # DRAM bytes of A, all batch entries, read once
    b_bytes: int
    out_bytes: int
    a_slice_bytes: int  # what one batch entry re-reads of A (a_bytes when A is shared)
    b_slice_bytes: int
    out_elem_bytes: float = 2.0
    other_bytes: int = 0  # bias, read once


@dataclass(frozen=True)
class Attention:
    """One flash-attention problem: batch*heads, query and key lengths, head dims, causality and DRAM bytes."""

    bh: int
    l: int
    s: int
    e: int
    ev: int
    causal: bool
    elem_bytes: float
    q_bytes: int
    kv_bytes: int  # k and v tensors, read once
    kv_head_bytes: int  # one head's K and V
    out_bytes: int
    other_bytes: int = 0  # mask
    out_elem_bytes: float = 2.0


@dataclass(frozen=True)
class TileEstimate:
    """The tile model's estimate for one tile size: feasibility (with the reason), on-chip bytes, waves and times."""

    tile: tuple[int, int, int]
    feasible: bool
    reason: str  # why infeasible ("" when feasible)
    onchip_bytes: float
    tiles: int
    waves: int
    tile_compute_s: float
    compute_s: float
    dram_bytes: float
    memory_s: float
    exposed_s: float
    latency_s: float


def _pad(x: int, step: int) -> int:
    return -(-x // step) * step


def _waves(tiles: int, units: int) -> tuple[int, int, int]:
    """(waves, tiles in the first wave, tiles in the last wave)."""
    waves = -(-tiles // units)
    return waves, min(tiles, units), tiles - (waves - 1) * units


def estimate(problem, tile: tuple[int, int, int], mach: Machine) -> TileEstimate:
    """The tile model's estimate for `problem` (`Gemm` or `Attention`) with `tile` = (Mt, Nt, Kt)."""
    mt, nt, kt = tile
    if min(tile) <= 0:
        raise ValueError(f"tile {tile}: sizes must be positive")
    if isinstance(problem, Gemm):
        return _gemm(problem, mt, nt, kt, mach)
    if isinstance(problem, Attention):
        return _attention(problem, mt, nt, kt, mach)
    raise TypeError(f"not a tile-model problem: {problem!r}")


def _finish(tile, need, mach, tiles, tile_s, dram, fill, drain) -> TileEstimate:
    waves, _, _ = _waves(tiles, mach.units)
    compute_s = waves * tile_s
    memory_s = dram / mach.bytes_per_s
    exposed_s = (fill + drain) / mach.bytes_per_s + mach.floor_s
    feasible = need <= mach.onchip_bytes
    reason = "" if feasible else (f"tile {'x'.join(map(str, tile))} needs {need / 1024:.0f} KiB on chip "
                                  f"per unit, more than the {mach.onchip_bytes / 1024:.0f} KiB available")
    latency = max(compute_s, memory_s) + exposed_s + mach.overhead_s
    return TileEstimate(tile, feasible, reason, need, tiles, waves, tile_s, compute_s, dram, memory_s,
                        exposed_s, latency)


def _gemm(p: Gemm, mt: int, nt: int, kt: int, mach: Machine) -> TileEstimate:
    need = mach.stages * (mt * kt * p.a_elem_bytes + kt * nt * p.b_elem_bytes) + mt * nt * ACC_BYTES
    row_tiles, col_tiles = -(-p.m // mt), -(-p.n // nt)
    tiles = p.batch * row_tiles * col_tiles
    tile_s = 2 * mt * nt * _pad(p.k, kt) / mach.unit_flops_per_s
    a_read, b_read = _operand_reads(p, row_tiles, col_tiles, tiles, mach)
    dram = a_read + b_read + p.out_bytes + p.other_bytes
    _, first, last = _waves(tiles, mach.units)
    # first K-stage: per tile Mt*Kt of A and Kt*Nt of B; distinct bytes at most the whole first stage
    k0 = min(kt, p.k)
    fill = min(first * (mt * k0 * p.a_elem_bytes + k0 * nt * p.b_elem_bytes),
               p.batch * (p.m * k0 * p.a_elem_bytes + k0 * p.n * p.b_elem_bytes))
    drain = last * min(mt, p.m) * min(nt, p.n) * p.out_elem_bytes
    return _finish((mt, nt, kt), need, mach, tiles, tile_s, dram, fill, drain)


def _operand_reads(p: Gemm, row_tiles: int, col_tiles: int, tiles: int, mach: Machine) -> tuple[float, float]:
    """DRAM bytes read of A and of B (see the module docstring). An operand shared by every batch entry
    (a_slice_bytes == a_bytes) has one set of panels; a batched one a set per entry."""
    a_batched, b_batched = p.a_slice_bytes < p.a_bytes, p.b_slice_bytes < p.b_bytes
    a_fits, b_fits = p.a_slice_bytes <= mach.l2_bytes, p.b_slice_bytes <= mach.l2_bytes
    if a_fits and b_fits:
        return p.a_bytes, p.b_bytes
    if mach.l2_bytes <= 0:  # every output tile streams its own panels: a shared operand once per entry
        return (p.a_bytes * col_tiles * (1 if a_batched else p.batch),
                p.b_bytes * row_tiles * (1 if b_batched else p.batch))
    a_panel = p.a_bytes / (p.batch * row_tiles if a_batched else row_tiles)
    b_panel = p.b_bytes / (p.batch * col_tiles if b_batched else col_tiles)
    per_batch = row_tiles * col_tiles
    a_read = b_read = 0.0
    for start in range(0, tiles, mach.units):
        end = min(start + mach.units, tiles)
        rows = (end - 1) // col_tiles - start // col_tiles + 1  # distinct (entry, tile row) in the wave
        a_read += (rows if a_batched else min(row_tiles, rows)) * a_panel
        if b_batched:  # per entry the wave touches, consecutive tiles cover min(C, count) tile columns
            cols = sum(min(col_tiles, min(end, (e + 1) * per_batch) - max(start, e * per_batch))
                       for e in range(start // per_batch, (end - 1) // per_batch + 1))
        else:
            cols = min(col_tiles, end - start)
        b_read += cols * b_panel
    return (p.a_bytes if a_fits else a_read), (p.b_bytes if b_fits else b_read)


def _visited_key_tiles(p: Attention, mt: int, nt: int) -> float:
    """Mean key tiles a query tile visits: all of them, or under causal masking the ones up to its last row."""
    key_tiles = -(-p.s // nt)
    if not p.causal:
        return key_tiles
    q_tiles = -(-p.l // mt)
    offset = p.s - p.l  # queries are the last L of S positions (KV cache before them)
    total = sum(min(key_tiles, -(-(offset + min((i + 1) * mt, p.l)) // nt)) for i in range(q_tiles))
    return total / q_tiles


def _attention(p: Attention, mt: int, nt: int, kt: int, mach: Machine) -> TileEstimate:
    e, ev = _pad(p.e, kt), _pad(p.ev, kt)
    need = (mt * e * p.elem_bytes + mach.stages * nt * (e + ev) * p.elem_bytes
            + mt * nt * ACC_BYTES + mt * ev * ACC_BYTES)
    q_tiles = -(-p.l // mt)
    tiles = p.bh * q_tiles
    visited = _visited_key_tiles(p, mt, nt)
    tile_s = visited * (2 * mt * nt * e + 2 * mt * nt * ev) / mach.unit_flops_per_s
    if p.kv_head_bytes <= mach.l2_bytes:
        kv = p.kv_bytes
    else:
        kv = p.bh * q_tiles * min(visited * nt, p.s) * (p.e + p.ev) * p.elem_bytes
    dram = p.q_bytes + kv + p.out_bytes + p.other_bytes
    _, first, last = _waves(tiles, mach.units)
    fill = min(first * (mt * p.e + nt * (p.e + p.ev)) * p.elem_bytes, p.q_bytes + p.kv_bytes)
    drain = last * min(mt, p.l) * p.ev * p.out_elem_bytes
    return _finish((mt, nt, kt), need, mach, tiles, tile_s, dram, fill, drain)


def spread(estimates: list[TileEstimate]) -> Optional[dict[str, float]]:
    """min / median / max latency over the feasible estimates (None when none is feasible)."""
    lat = sorted(x.latency_s for x in estimates if x.feasible)
    if not lat:
        return None
    mid = len(lat) // 2
    median = lat[mid] if len(lat) % 2 else (lat[mid - 1] + lat[mid]) / 2
    return {"min": lat[0], "median": median, "max": lat[-1]}

