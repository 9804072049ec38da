"""Hardware targets: one TOML file per device, loaded into a validated, immutable `Target`.

Guarantees:

- Every figure is dense (no structured sparsity) and carries a source: a target file without a
  ``[sources]`` entry for one of its figures does not load.
- Loading validates everything and raises `graphperf.errors.UsageError` with one line naming the
  file and the field: malformed TOML (with the parser's line and column), unknown key (typo
  protection, with a suggestion), missing required field, wrong type, a peak or size that is
  not > 0, an efficiency outside (0, 1], an unknown target name (listing the valid ones).
- ``--set key=value`` overrides (`load_target(name, overrides)` or `Target.with_overrides`) parse
  each value to the field's type and validate it the same way.
- Units live in the key names: ``*_tflops`` / ``*_tops`` (1e12 per second, dense),
  ``hbm_gbps`` (1e9 bytes/s), ``memory_gb`` (1e9 bytes, or GiB where the vendor labels GiB),
  ``l2_mb`` / ``llc_mb`` (MB as the vendor labels them), ``onchip_sram_per_unit_kb``,
  ``clock_mhz``, ``launch_overhead_us``; efficiencies are fractions in (0, 1].

Matmul dtype routing (`Target.matrix_peak_flops`), by canonical dtype of the inputs
(names from `graphperf.dtypes`):

==============================  ==============================================================
input dtype                     peak used, first one the target has
==============================  ==============================================================
float4_e2m1                     matrix_fp4 -> matrix_fp8 -> matrix_bf16 -> matrix_fp16
float8_e4m3fn, float8_e5m2      matrix_fp8 -> matrix_bf16 -> matrix_fp16
int8                            matrix_int8 -> matrix_bf16 -> matrix_fp16 (dequantized to a
                                16-bit compute dtype; fp8 is not an int8 fallback)
bfloat16                        matrix_bf16 -> matrix_fp16 (same width)
float16                         matrix_fp16 -> matrix_bf16 (same width)
float32                         matrix_tf32 only if ``allow_tf32``, then matrix_fp32 (a matrix
                                unit that computes IEEE fp32, e.g. Gaudi 3 MME), else None
tfloat32                        matrix_tf32 -> matrix_fp32, else None
float64                         matrix_fp64, else None
anything else (ints, bool...)   None
==============================  ==============================================================

None means "no matrix unit for this dtype": the caller uses `Target.vector_peak_flops`.

Example
-------
>>> from graphperf.target import load_target
>>> h100 = load_target("h100", {"hbm_gbps": "4800"})
>>> h100.hbm_bytes_per_s
4800000000000.0
>>> h100.matrix_peak_flops("float8_e4m3fn")
(1979000000000000.0, 'matrix_fp8_tflops')
>>> h100.matrix_peak_flops("float32") is None     # no TF32 unless allow_tf32
True
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from graphperf.dtypes import DTYPE_BITS
from graphperf.errors import AnalysisError, UsageError

__all__ = ["Target", "load_target", "list_targets", "KINDS", "IDENTITY_FIELDS", "FIGURE_FIELDS", "MODEL_FIELDS", "OP_MATRIX_EFFICIENCY",
           "EFFICIENCY_FIELDS"]

KINDS = ("gpu", "tpu", "npu", "cpu")

#: Fields that say which target this is, not how fast it is: a file sets them, `--set` does not.
IDENTITY_FIELDS = ("name", "label", "vendor", "kind", "reference_id")

# Scalar fields in schema order: name -> (type, required, unit/meaning for messages and README).
_SCALARS: dict[str, tuple[type, bool, str]] = {
    "name": (str, True, "short lowercase name, e.g. h100"),
    "label": (str, True, "human-readable device name"),
    "vendor": (str, True, "vendor"),
    "kind": (str, True, "one of " + "|".join(KINDS)),
    "calibrated": (bool, True, "true if graphperf calibrate measured the figures on the device (and, with "
                               "--fit, fitted the efficiencies); false for datasheet figures"),
    "allow_tf32": (bool, False, "run float32 matmuls on TF32 units (default false, as PyTorch)"),
    "reference_id": (str, False, "entry id in the reference dataset targets.json"),
    "matrix_fp64_tflops": (float, False, "dense FP64 matrix-unit peak, TFLOP/s"),
    "matrix_fp32_tflops": (float, False, "dense IEEE-FP32 matrix-unit peak, TFLOP/s"),
    "matrix_tf32_tflops": (float, False, "dense TF32 matrix-unit peak, TFLOP/s"),
    "matrix_bf16_tflops": (float, False, "dense BF16 matrix-unit peak, TFLOP/s"),
    "matrix_fp16_tflops": (float, False, "dense FP16 matrix-unit peak, TFLOP/s"),
    "matrix_fp8_tflops": (float, False, "dense FP8 matrix-unit peak, TFLOP/s"),
    "matrix_int8_tops": (float, False, "dense INT8 matrix-unit peak, TOP/s"),
    "matrix_fp4_tflops": (float, False, "dense FP4 matrix-unit peak, TFLOP/s"),
    "vector_fp32_tflops": (float, True, "FP32 peak of the non-matrix (vector/SIMT) units, TFLOP/s"),
    "vector_fp64_tflops": (float, False, "FP64 peak of the non-matrix units, TFLOP/s"),
    "hbm_gbps": (float, True, "device memory bandwidth, GB/s (1e9 B/s)"),
    "memory_gb": (float, False, "device memory capacity, GB"),
    "l2_mb": (float, False, "L2 cache (or last-level on-chip memory if no L2), MB"),
    "llc_mb": (float, False, "last-level cache when it differs from L2, MB"),
    "onchip_sram_per_unit_kb": (float, False, "shared memory + L1 (or scratchpad) per unit, KB"),
    "compute_units": (int, False, "SMs / CUs / TensorCores / cores"),
    "clock_mhz": (float, False, "boost clock, MHz"),
    "launch_overhead_us": (float, True, "host issue interval per kernel when kernels are replayed back to back "
                                        "(CUDA-graph replay: the `graph` execution mode), microseconds"),
    "host_eager_us": (float, False, "host time to dispatch one kernel-launching op in eager PyTorch, microseconds "
                                    "(the `eager` execution mode; default launch_overhead_us)"),
    "host_eager_library_us": (float, False, "host time of an eager op that calls a vendor library (cuBLAS, cuDNN: "
                                            "matmul, conv, attention, batch norm), microseconds (default "
                                            "host_eager_us)"),
    "host_eager_view_us": (float, False, "host time of an eager op that launches no kernel (view, reshape), "
                                         "microseconds (default 0)"),
    "compiled_launch_us": (float, False, "host time per kernel of a compiled graph's wrapper (torch.compile), "
                                         "microseconds (the `compiled` mode; default launch_overhead_us)"),
    "matrix_efficiency": (float, True, "achievable fraction of the matrix peaks"),
    "matrix_efficiency_conv": (float, False, "achievable fraction of the matrix peaks for convolutions "
                                             "(default: matrix_efficiency)"),
    "matrix_efficiency_attention": (float, False, "achievable fraction of the matrix peaks for attention "
                                                  "kernels (default: matrix_efficiency)"),
    "vector_efficiency": (float, True, "achievable fraction of the vector peaks"),
    "memory_efficiency_strided": (float, False, "fraction of hbm_gbps a non-vectorized copy path reaches: "
                                                "broadcast operands, casts, concatenation, layout copies "
                                                "(default memory_efficiency)"),
    "memory_efficiency_row": (float, False, "fraction of hbm_gbps a row kernel reaches (softmax, norms, "
                                            "reductions; default memory_efficiency)"),
    "kernel_floor_us": (float, False, "fixed device time of every kernel (ramp, DRAM latency, tail), "
                                      "microseconds; set to use the size-aware kernel model"),
    "kernel_floor_strided_us": (float, False, "fixed device time of a strided-class kernel (broadcast, cast, "
                                              "concatenation: index arithmetic per element), microseconds "
                                              "(default kernel_floor_us)"),
    "kernel_floor_row_us": (float, False, "fixed device time of a row kernel (softmax, norms, reductions), "
                                          "microseconds (default kernel_floor_us)"),
    "matrix_floor_us": (float, False, "fixed device time of a GEMM or attention kernel, microseconds "
                                      "(default kernel_floor_us)"),
    "misaligned_matrix_factor": (float, False, "fraction of the matrix rate a GEMM keeps when a dimension's "
                                               "byte stride is not a multiple of 16 (align1 kernels)"),
    "allow_tf32_conv": (bool, False, "run float32 convolutions on TF32 units (PyTorch's cuDNN default: true)"),
    "memory_efficiency": (float, True, "achievable fraction of hbm_gbps"),
    "scale_up_gbps": (float, False, "scale-up link bandwidth per device and direction (NVLink, xGMI, ICI), GB/s: "
                                    "the rate a ring collective inside one node sends at (graphperf/rules/collective.py)"),
    "scale_up_latency_us": (float, False, "latency of one step of a collective over the scale-up links, "
                                          "microseconds"),
    "scale_out_gbps": (float, False, "scale-out network bandwidth per device and direction (the NICs between "
                                     "nodes), GB/s"),
    "scale_out_latency_us": (float, False, "latency of one step of a collective over the scale-out network, "
                                           "microseconds"),
    "devices_per_node": (int, False, "devices one scale-up domain connects (8 in an HGX node, 72 in an NVL72 "
                                     "rack); a collective group larger than this crosses the scale-out network"),
    "scale_up_efficiency": (float, False, "achieved fraction of scale_up_gbps on a collective's wire bytes "
                                          "(protocol headers, chunking, the copy/reduce kernels), in (0, 1]"),
    "scale_out_efficiency": (float, False, "achieved fraction of scale_out_gbps on a collective's wire bytes, "
                                           "in (0, 1]"),
    "collective_base_us": (float, False, "fixed time of one collective call whatever its size (the library's "
                                         "launch and the group's synchronisation), microseconds"),
    "notes": (str, False, "assumptions and caveats, free text"),
}
_TABLES = ("references", "sources", "derived")
_EFFICIENCIES = ("matrix_efficiency", "matrix_efficiency_conv", "matrix_efficiency_attention", "vector_efficiency",
                 "memory_efficiency", "memory_efficiency_strided", "memory_efficiency_row", "misaligned_matrix_factor")
#: Op families (`graphperf.ops.matrix_family`) with a matrix efficiency of their own (optional fields;
#: `Target.matrix_efficiency_for`).
OP_MATRIX_EFFICIENCY = {"conv": "matrix_efficiency_conv", "attention": "matrix_efficiency_attention"}
#: Every efficiency field (each in (0, 1]).
EFFICIENCY_FIELDS = _EFFICIENCIES


#: Fields of the execution and kernel models (graphperf/execution.py, graphperf/kernel_time.py): measured or
#: fitted figures of how kernels run, not datasheet figures.
MODEL_FIELDS = ("launch_overhead_us", "host_eager_us", "host_eager_library_us", "host_eager_view_us",
                "compiled_launch_us", *_EFFICIENCIES, "kernel_floor_us", "kernel_floor_strided_us", "kernel_floor_row_us",
                "matrix_floor_us")
#: Numeric fields: each needs a [sources] entry and must be > 0 (efficiencies: in (0, 1]).
FIGURE_FIELDS = tuple(k for k, (t, _, _) in _SCALARS.items() if t in (float, int))
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

_FP16_FAMILY = ("matrix_bf16_tflops", "matrix_fp16_tflops")
_MATRIX_ROUTES: dict[str, tuple[str, ...]] = {
    "float4_e2m1": ("matrix_fp4_tflops", "matrix_fp8_tflops", *_FP16_FAMILY),
    "float8_e4m3fn": ("matrix_fp8_tflops", *_FP16_FAMILY),
    "float8_e5m2": ("matrix_fp8_tflops", *_FP16_FAMILY),
    "int8": ("matrix_int8_tops", *_FP16_FAMILY),
    "bfloat16": _FP16_FAMILY,
    "float16": ("matrix_fp16_tflops", "matrix_bf16_tflops"),
    "tfloat32": ("matrix_tf32_tflops", "matrix_fp32_tflops"),
    "float64": ("matrix_fp64_tflops",),
}
_FP64_DTYPES = ("float64", "complex128")


@dataclass(frozen=True)
class Target:
    """One accelerator or CPU: dense peaks, memory system, overheads and default efficiencies.

    Build one with `load_target`; fields are documented in the module docstring and in
    graphperf/targets/README.md. `sources` maps each figure to where it came from,
    `derived` maps figures not read directly off a dense vendor figure to their derivation,
    `references` maps the reference ids used in `sources` to a title and URL.

    Units are in the field names. A frozen dataclass: `with_overrides` returns a changed copy.

    Attributes
    ----------
    name, label, vendor, kind : str
        The short name (``"h100"``, the file name), a display label, the vendor and the kind of device
        (``"gpu"``, ``"tpu"``, ``"npu"`` or ``"cpu"``).
    calibrated : bool
        True if ``graphperf calibrate`` measured the figures on the device; False for datasheet figures.
    matrix_bf16_tflops, matrix_fp16_tflops, matrix_tf32_tflops, matrix_fp8_tflops, ... : float or None
        Dense matrix-unit peaks per dtype; None where the device has no such unit.
    vector_fp32_tflops, vector_fp64_tflops : float or None
        Non-matrix peaks (`vector_fp64_tflops` None where the device has no FP64 unit).
    hbm_gbps, memory_gb, l2_mb : float or None
        Device-memory bandwidth and capacity, last-level on-chip cache.
    launch_overhead_us : float
        The gap before each kernel in ``graph`` mode.
    matrix_efficiency, vector_efficiency, memory_efficiency : float
        The fraction of each peak a kernel reaches (with `matrix_efficiency_conv`,
        `matrix_efficiency_attention` for those families where given).
    compute_units, kernel_floor_us, ... : optional
        The size-aware kernel model's figures (graphperf/kernel_time.py); None where not given.
    sources, derived, references : Mapping[str, str]
        Where each figure came from.
    overridden : tuple of str
        The fields changed by ``--set`` / `with_overrides`.

    Example
    -------
    >>> import graphperf
    >>> h100 = graphperf.load_target("h100")
    >>> h100.hbm_gbps, h100.matrix_bf16_tflops
    (3350.0, 989.5)
    >>> faster = h100.with_overrides(hbm_gbps=4800)
    >>> faster.hbm_gbps, faster.tag
    (4800.0, 'h100 --set hbm_gbps=4800')
    """

    name: str
    label: str
    vendor: str
    kind: str
    calibrated: bool
    vector_fp32_tflops: float
    hbm_gbps: float
    launch_overhead_us: float
    matrix_efficiency: float
    vector_efficiency: float
    memory_efficiency: float
    allow_tf32: bool = False
    reference_id: str | None = None
    matrix_fp64_tflops: float | None = None
    matrix_fp32_tflops: float | None = None
    matrix_tf32_tflops: float | None = None
    matrix_bf16_tflops: float | None = None
    matrix_fp16_tflops: float | None = None
    matrix_fp8_tflops: float | None = None
    matrix_int8_tops: float | None = None
    matrix_fp4_tflops: float | None = None
    vector_fp64_tflops: float | None = None
    memory_gb: float | None = None
    l2_mb: float | None = None
    llc_mb: float | None = None
    onchip_sram_per_unit_kb: float | None = None
    compute_units: int | None = None
    clock_mhz: float | None = None
    host_eager_us: float | None = None
    host_eager_library_us: float | None = None
    host_eager_view_us: float | None = None
    compiled_launch_us: float | None = None
    memory_efficiency_strided: float | None = None
    memory_efficiency_row: float | None = None
    kernel_floor_us: float | None = None
    kernel_floor_strided_us: float | None = None
    kernel_floor_row_us: float | None = None
    matrix_floor_us: float | None = None
    misaligned_matrix_factor: float | None = None
    allow_tf32_conv: bool = True
    matrix_efficiency_conv: float | None = None
    matrix_efficiency_attention: float | None = None
    scale_up_gbps: float | None = None
    scale_up_latency_us: float | None = None
    scale_out_gbps: float | None = None
    scale_out_latency_us: float | None = None
    devices_per_node: int | None = None
    scale_up_efficiency: float | None = None
    scale_out_efficiency: float | None = None
    collective_base_us: float | None = None
    notes: str = ""
    path: str = ""
    overridden: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict, hash=False)
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    derived: Mapping[str, str] = field(default_factory=dict, hash=False)

    # -- peaks ------------------------------------------------------------------------------

    def matrix_peak_flops(self, dtype: str, family: str = "matmul") -> tuple[float, str] | None:
        """Dense matrix-unit peak in FLOP/s for a matmul whose inputs are `dtype`, and the field used.

        Follows the routing table in the module docstring; None when no matrix unit serves the
        dtype (the caller then uses `vector_peak_flops`). A float32 convolution (`family` "conv")
        takes TF32 when ``allow_tf32_conv`` (PyTorch's cuDNN default), other float32 matrix work when
        ``allow_tf32``.
        """
        _check_dtype(dtype)
        if dtype == "float32":
            tf32 = self.allow_tf32_conv if family == "conv" else self.allow_tf32
            route = ("matrix_tf32_tflops",) if tf32 else ()
            route += ("matrix_fp32_tflops",)
        else:
            route = _MATRIX_ROUTES.get(dtype, ())
        for key in route:
            value = getattr(self, key)
            if value is not None:
                return value * 1e12, key
        return None

    def matrix_efficiency_for(self, family: str) -> float:
        """The matrix efficiency of an op family (`matrix_family`): its own field (conv, attention) when
        the target gives one, `matrix_efficiency` otherwise."""
        own = OP_MATRIX_EFFICIENCY.get(family)
        value = getattr(self, own) if own else None
        return self.matrix_efficiency if value is None else value

    def has_native_matrix_peak(self, dtype: str) -> bool:
        """True when a matmul in `dtype` runs at that dtype's own matrix peak: no fallback to a wider
        format and not the vector unit (float32 counts TF32 or an FP32 matrix unit as its own)."""
        peak = self.matrix_peak_flops(dtype)
        if peak is None:
            return False
        own = ("matrix_tf32_tflops", "matrix_fp32_tflops") if dtype == "float32" else _MATRIX_ROUTES.get(dtype, ())[:1]
        return peak[1] in own

    def vector_peak_flops(self, dtype: str) -> float:
        """Non-matrix peak in FLOP/s: vector_fp64 for float64/complex128, vector_fp32 otherwise.

        Raises `AnalysisError` for float64 on a target with no FP64 figure (TPUs, most NPUs):
        the target has no such unit, and 0 or a guess would hide that.
        """
        _check_dtype(dtype)
        if dtype in _FP64_DTYPES:
            if self.vector_fp64_tflops is None:
                raise AnalysisError(
                    f"target {self.name} has no float64 peak (vector_fp64_tflops); "
                    f"set one with --set vector_fp64_tflops=VALUE"
                )
            return self.vector_fp64_tflops * 1e12
        return self.vector_fp32_tflops * 1e12

    @property
    def hbm_bytes_per_s(self) -> float:
        """Peak device-memory bandwidth in bytes/s."""
        return self.hbm_gbps * 1e9

    # -- serialisation and overrides --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The full spec as a JSON-serialisable dict in schema order (tables sorted by key)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = {k: value[k] for k in sorted(value)}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @property
    def overrides(self) -> dict[str, Any]:
        """The fields changed by ``--set`` (`with_overrides`), with their values, in schema order."""
        return {k: getattr(self, k) for k in _SCALARS if k in self.overridden}

    @property
    def title(self) -> str:
        """The label, plus the ``--set`` overrides when there are any: what report titles say the target is."""
        return f"{self.label} with --set {self._set_text(', ')}" if self.overridden else self.label

    @property
    def tag(self) -> str:
        """The name, plus the ``--set`` overrides when there are any ("h100 --set hbm_gbps=4800"): the short
        form of `title`, for diffs and reprs."""
        return f"{self.name} --set {self._set_text(',')}" if self.overridden else self.name

    def _set_text(self, sep: str) -> str:
        return sep.join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.overrides.items())

    def with_overrides(self, **values: Any) -> Target:
        """A copy with fields replaced; string values are parsed like ``--set key=value``.

        Unknown fields, unparsable values and values that fail validation raise `UsageError`
        naming the field. ``none`` (or an empty string) removes an optional figure.
        """
        where = f"--set for target {self.name}"
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in _SCALARS:
                raise UsageError(f"{where}: unknown field {key!r}{_suggest(key)}; valid fields: "
                                 + ", ".join(k for k in _SCALARS if k not in IDENTITY_FIELDS))
            if key in IDENTITY_FIELDS:
                raise UsageError(f"{where}: {key} names the target and is not a figure; --set changes figures "
                                 f"(hbm_gbps, matrix_bf16_tflops, ...). To rename it, copy its file (graphperf "
                                 f"targets --format json shows the path) and edit {key} there")
            value = _parse_value(key, raw, where) if isinstance(raw, str) else raw
            if _SCALARS[key][0] is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            changes[key] = value
        if not changes:
            return self
        for key, value in changes.items():  # the rest was checked when the target was loaded
            if value is None:
                if _SCALARS[key][1]:
                    raise UsageError(f"{where}: field {key!r} is required and cannot be removed")
            else:
                _check_field(key, value, where)
        sources = dict(self.sources)
        derived = dict(self.derived)
        for key, value in changes.items():
            derived.pop(key, None)
            sources.pop(key, None)
            if key in FIGURE_FIELDS and value is not None:
                sources[key] = f"override: --set {key}={values[key]}"
        overridden = tuple(sorted(set(self.overridden) | set(changes)))
        return dataclasses.replace(
            self, **changes, overridden=overridden,
            sources=MappingProxyType(sources), derived=MappingProxyType(derived),
        )


# -- loading ---------------------------------------------------------------------------------


def list_targets() -> list[str]:
    """Names of the bundled targets (graphperf/targets/*.toml), sorted.

    Returns
    -------
    list of str
        Each one a name `load_target` takes.

    Example
    -------
    >>> import graphperf
    >>> names = graphperf.list_targets()
    >>> "h100" in names, names == sorted(names)
    (True, True)
    """
    return sorted(p.name[: -len(".toml")] for p in _bundled_dir().iterdir()
                  if p.name.endswith(".toml"))


def load_target(name_or_path: str, overrides: Mapping[str, str] = {}) -> Target:  # noqa: B006
    """Load a bundled target by short name (``"h100"``) or a user TOML file by path.

    `overrides` maps field names to strings, as given by ``--set key=value``. Raises
    `UsageError` for an unknown name, a missing/unreadable file or any validation failure.

    Parameters
    ----------
    name_or_path : str or path
        A bundled target's name (`list_targets`; case-insensitive) or a path to a ``.toml`` file.
    overrides : Mapping[str, str]
        Field values replacing the file's, parsed as ``--set key=value`` (`Target.with_overrides`).

    Returns
    -------
    Target
        Validated; bundled targets are cached (the same object for the same name, without overrides).

    Raises
    ------
    UsageError
        An unknown name (with close matches), a missing or unreadable file, a bad field or value
        (named).

    Example
    -------
    >>> import graphperf
    >>> graphperf.load_target("a100").name
    'a100'
    >>> graphperf.load_target("h100", {"hbm_gbps": "4800"}).hbm_gbps
    4800.0
    >>> graphperf.load_target("h1000")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graphperf.errors.UsageError: unknown target 'h1000'...
    """
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"target file {text!r} not found (give a bundled name or a .toml path)")
        target = _load_file(path, str(path))
    else:
        names = list_targets()
        key = text.lower()
        if key not in names:
            raise UsageError(f"unknown target {text!r}{_suggest(key, names)}; valid targets: "
                             + ", ".join(names) + "; or pass a path to a .toml file")
        target = _load_bundled(key)
        if target.name != key:
            raise UsageError(f"graphperf/targets/{key}.toml: name {target.name!r} does not match "
                             f"the file name {key!r}")
    return target.with_overrides(**dict(overrides)) if overrides else target


def _bundled_dir():
    return resources.files("graphperf.targets")


@functools.lru_cache(maxsize=None)
def _load_bundled(name: str) -> Target:
    return _load_file(_bundled_dir() / f"{name}.toml", f"graphperf/targets/{name}.toml")


def _load_file(path: Any, shown: str) -> Target:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{shown}: cannot read target file: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UsageError(f"{shown}: target file is not UTF-8 text ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{shown}: invalid TOML: {e}") from None
    return _from_dict(data, shown)


def _from_dict(data: dict[str, Any], where: str) -> Target:
    for key in data:
        if key not in _SCALARS and key not in _TABLES:
            raise UsageError(f"{where}: unknown key {key!r}{_suggest(key)}; valid keys: "
                             + ", ".join([*_SCALARS, *(f"[{t}]" for t in _TABLES)]))
    tables: dict[str, dict[str, str]] = {}
    for table in _TABLES:
        value = data.get(table, {})
        if not isinstance(value, dict):
            raise UsageError(f"{where}: {table!r} must be a table ([{table}]), got {_tname(value)}")
        for k, v in value.items():
            if not isinstance(v, str) or not v.strip():
                raise UsageError(f"{where}: [{table}] {k!r} must be a non-empty string")
        tables[table] = dict(value)
    scalars = {k: v for k, v in data.items() if k in _SCALARS}
    _validate_scalars(scalars, where, required=True)
    scalars = {k: float(v) if _SCALARS[k][0] is float else v for k, v in scalars.items()}
    for table in ("sources", "derived"):
        for k in tables[table]:
            if k not in FIGURE_FIELDS:
                raise UsageError(f"{where}: [{table}] {k!r} is not a figure field{_suggest(k)}; "
                                 f"figure fields: " + ", ".join(FIGURE_FIELDS))
            if k not in scalars:
                raise UsageError(f"{where}: [{table}] {k!r} describes a field the file does not set")
    for k in FIGURE_FIELDS:
        if k in scalars and k not in tables["sources"]:
            raise UsageError(f"{where}: field {k!r} has no source: add `{k} = \"...\"` to [sources]")
    return Target(
        **scalars, path=where,
        references=MappingProxyType(tables["references"]),
        sources=MappingProxyType(tables["sources"]),
        derived=MappingProxyType(tables["derived"]),
    )


# -- validation ------------------------------------------------------------------------------


def _validate_scalars(data: Mapping[str, Any], where: str, required: bool) -> None:
    for key, (typ, req, meaning) in _SCALARS.items():
        if key not in data or data[key] is None:
            if req and required:
                raise UsageError(f"{where}: missing required field {key!r} ({meaning})")
            continue
        _check_field(key, data[key], where)
    if data.get("kind") not in KINDS:
        raise UsageError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, "
                         f"got {data.get('kind')!r}")
    if not _NAME_RE.match(data.get("name", "")):
        raise UsageError(f"{where}: field 'name' must be lowercase letters, digits, '.', '_' "
                         f"or '-', got {data.get('name')!r}")


def _check_field(key: str, value: Any, where: str) -> None:
    """One field's type and range (efficiencies in (0, 1], other figures finite and > 0); UsageError naming it."""
    typ, _, meaning = _SCALARS[key]
    if typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, typ) and (typ is bool or not isinstance(value, bool))
    if not ok:
        raise UsageError(f"{where}: field {key!r} must be {_TYPE_WORDS[typ]} ({meaning}), "
                         f"got {_tname(value)} {value!r}")
    if key in _EFFICIENCIES and not 0 < value <= 1:
        raise UsageError(f"{where}: field {key!r} must be in (0, 1] ({meaning}), got {value!r}")
    if typ in (float, int) and (not math.isfinite(value) or value <= 0):
        raise UsageError(f"{where}: field {key!r} must be > 0 ({meaning}), got {value!r}")


_TYPE_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_value(key: str, raw: str, where: str) -> Any:
    typ, required, meaning = _SCALARS[key]
    text = raw.strip()
    if text.lower() in ("", "none", "null"):
        if required:
            raise UsageError(f"{where}: field {key!r} is required and cannot be removed")
        return None
    try:
        if typ is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
        return raw
    except ValueError:
        raise UsageError(f"{where}: cannot parse {key}={raw!r}: expected {_TYPE_WORDS[typ]} "
                         f"({meaning})") from None


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPE_BITS:
        raise ValueError(f"not a canonical dtype: {dtype!r}; expected one of "
                         + ", ".join(DTYPE_BITS))


def _suggest(key: str, choices: Any = None) -> str:
    close = difflib.get_close_matches(key, list(choices or [*_SCALARS, *_TABLES]), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _tname(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            dict: "table", list: "array"}.get(type(value), type(value).__name__)
