"""Named reference workloads: specs, configs and ``build``.

Every model is a :class:`ModelSpec` with named configs (at least ``"full"``, the
published hyperparameters, and ``"tiny"``, the same architecture at toy widths for
tests) and the phases it runs. :func:`build` turns a spec, a config name and a shape
(batch, seq or kv_len) into a :class:`Workload`: a module in eval mode whose
parameters are in the requested dtype on the requested device, plus example inputs.

Guarantees:

- The default device is ``"meta"``: full-size models (Llama-3-405B included) are
  built without allocating their weights, ready for ``torch.export.export``.
- Construction is deterministic: the same arguments give the same weights and inputs
  (the global RNG is forked and seeded, then restored).
- Bad arguments raise ``ValueError`` naming the argument, the value and what is allowed;
  an unknown model name raises ``KeyError`` listing the names.

Example
-------
>>> from graphperf.models import build
>>> w = build("llama3-8b", config="tiny", phase="decode", batch=2, kv_len=16, dtype="float32")
>>> w.description
'llama3-8b[tiny] decode batch=2 kv_len=16 float32'
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["ModelSpec", "Workload", "list_models", "get_model", "build", "DTYPES"]

# Model families, one module each; each module exposes ``SPECS: tuple[ModelSpec, ...]``.
_FAMILY_MODULES = ("bert", "gpt2", "llama", "mixtral", "resnet", "vit")

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

# factory(config, phase, batch, seq, kv_len, dtype, device) -> (module, args); called
# with the default device and dtype already set to the requested ones.
Factory = Callable[[Any, str, int, "int | None", "int | None", torch.dtype, torch.device],
                   "tuple[nn.Module, tuple]"]


@dataclass(frozen=True)
class ModelSpec:
    """A named reference workload.

    ``default_seq`` is ``None`` for models whose input length is fixed by their config
    (vision models); ``default_kv_len`` is ``None`` for models without a decode phase.
    Sequence defaults are clamped to a config's ``max_positions`` when it is smaller.
    """

    name: str
    family: str
    description: str
    configs: dict[str, Any]
    phases: tuple[str, ...]
    default_dtype: str
    default_batch: int = 1
    default_seq: int | None = None
    default_kv_len: int | None = None
    source: str = ""
    factory: Factory | None = field(default=None, repr=False, compare=False)

    @property
    def is_llm(self) -> bool:
        return "decode" in self.phases


@dataclass
class Workload:
    """A built model and example inputs.

    ``module(*args)`` runs it; ``torch.export.export(module, args)`` captures it. ``seq`` is
    None for decode and vision workloads, ``kv_len`` None outside decode.
    """

    spec: ModelSpec
    config: str
    phase: str
    batch: int
    seq: int | None
    kv_len: int | None
    dtype: str
    module: nn.Module
    args: tuple
    description: str


_SPECS: dict[str, ModelSpec] | None = None


def _registry() -> dict[str, ModelSpec]:
    global _SPECS
    if _SPECS is None:
        specs: dict[str, ModelSpec] = {}
        for family in _FAMILY_MODULES:
            module = importlib.import_module(f"{__package__}.{family}")
            for spec in module.SPECS:
                if spec.name in specs:
                    raise RuntimeError(f"model {spec.name!r} registered twice")
                specs[spec.name] = spec
        _SPECS = dict(sorted(specs.items()))
    return _SPECS


def list_models() -> list[ModelSpec]:
    """All model specs, sorted by name."""
    return list(_registry().values())


def get_model(name: str) -> ModelSpec:
    """The spec named ``name``; ``KeyError`` listing the known names otherwise."""
    specs = _registry()
    if name not in specs:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(specs)}")
    return specs[name]


def _positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _resolve_dtype(dtype: str | torch.dtype) -> tuple[str, torch.dtype]:
    """A torch.dtype, a canonical name or a short spelling (graphperf.dtypes.SPELLINGS: bf16, fp16,
    half, fp32, float) -> (canonical name, torch.dtype)."""
    from graphperf.dtypes import SPELLINGS, dtype_name

    if isinstance(dtype, str):
        try:
            dtype = dtype_name(dtype)
        except KeyError:
            pass
    for name, torch_dtype in DTYPES.items():
        if dtype == name or dtype is torch_dtype:
            return name, torch_dtype
    short = sorted(k for k, v in SPELLINGS.items() if v in DTYPES)
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (or {', '.join(short)}), got {dtype!r}")


def _resolve_shape(spec: ModelSpec, cfg: Any, phase: str, batch, seq, kv_len):
    """Validate and default (batch, seq, kv_len) for ``phase``; unused ones come back as None."""
    batch = _positive_int("batch", spec.default_batch if batch is None else batch)
    max_positions = getattr(cfg, "max_positions", None)

    def clamp(default):
        return default if max_positions is None else min(default, max_positions)

    def within_limit(what, value):
        if max_positions is not None and value > max_positions:
            raise ValueError(f"{what}={value} exceeds the {max_positions} positions {spec.name} supports")
        return value

    if phase == "decode":
        if seq not in (None, 1):
            raise ValueError("decode processes one token per step: "
                             f"pass kv_len (context length), not seq={seq!r}")
        kv_len = clamp(spec.default_kv_len) if kv_len is None else kv_len
        kv_len = within_limit("kv_len", _positive_int("kv_len", kv_len))
        return batch, None, kv_len
    if kv_len is not None:
        raise ValueError(f"kv_len applies to the decode phase only, not {phase!r}")
    if spec.default_seq is None:
        if seq is not None:
            raise ValueError(f"{spec.name} takes no seq: its input size is fixed by the config")
        return batch, None, None
    seq = within_limit("seq", _positive_int("seq", clamp(spec.default_seq) if seq is None else seq))
    return batch, seq, None


@contextlib.contextmanager
def _construction(device: torch.device, dtype: torch.dtype):
    """Create tensors on ``device`` in ``dtype`` with a seeded, restored RNG."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), device:
            torch.manual_seed(0)
            yield
    finally:
        torch.set_default_dtype(previous)


def build(
    name: str | ModelSpec,
    *,
    config: str = "full",
    phase: str | None = None,
    batch: int | None = None,
    seq: int | None = None,
    kv_len: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device = "meta",
    attention: str = "sdpa",
) -> Workload:
    """Build model ``name`` at ``config`` for ``phase`` with example inputs.

    ``phase`` defaults to the spec's first phase, ``dtype`` to its default dtype and
    batch/seq/kv_len to its defaults. ``seq`` applies to prefill and forward phases of
    sequence models, ``kv_len`` (context length including the current token) to decode.
    ``attention`` is ``"sdpa"`` (one fused attention node) or ``"eager"`` (the unfused
    matmul-softmax-matmul chain; see :mod:`.layers`). ``name`` may also be a spec itself (one
    made from a Hugging Face ``config.json`` by :mod:`.hf_config`).
    """
    spec = name if isinstance(name, ModelSpec) else get_model(name)
    name = spec.name
    if config not in spec.configs:
        raise ValueError(f"{name} has no config {config!r}; configs: {', '.join(spec.configs)}")
    cfg = spec.configs[config]
    phase = spec.phases[0] if phase is None else phase
    if phase not in spec.phases:
        raise ValueError(f"{name} has no phase {phase!r}; phases: {', '.join(spec.phases)}")
    batch, seq, kv_len = _resolve_shape(spec, cfg, phase, batch, seq, kv_len)
    dtype_name, torch_dtype = _resolve_dtype(spec.default_dtype if dtype is None else dtype)
    device = torch.device(device)

    from .layers import attention_implementation

    with _construction(device, torch_dtype), attention_implementation(attention):
        module, args = spec.factory(cfg, phase, batch, seq, kv_len, torch_dtype, device)
    module = module.to(dtype=torch_dtype).eval()

    label = name if config == "full" else f"{name}[{config}]"
    if phase == "decode":
        shape = f"kv_len={kv_len}"
    elif seq is not None:
        shape = f"seq={seq}"
    else:
        shape = f"image={cfg.image_size}"
    description = f"{label} {phase} batch={batch} {shape} {dtype_name}"
    if attention != "sdpa":
        description += f" attention={attention}"
    return Workload(spec, config, phase, batch, seq, kv_len, dtype_name, module, args, description)


def token_ids(batch: int, length: int, vocab: int, device: torch.device) -> torch.Tensor:
    """Example token ids ``[batch, length]`` (int64): random on a real device, zeros on meta."""
    if device.type == "meta":
        return torch.zeros(batch, length, dtype=torch.long, device=device)
    return torch.randint(0, vocab, (batch, length), dtype=torch.long, device=device)


def example_tensor(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A float example input: standard normal on a real device, uninitialised on meta."""
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.randn(shape, dtype=dtype, device=device)


def decoder_inputs(phase: str, batch: int, seq: int, kv_len: int, vocab: int, kv_heads: int, head_dim: int,
                   num_layers: int, dtype: torch.dtype, device: torch.device) -> tuple:
    """Example inputs of a decoder LM: prefill ``(ids[B, S],)``; decode ``(ids[B, 1], past)`` where
    ``past`` holds one ``(K, V)`` pair per layer, each ``[B, kv_heads, kv_len, head_dim]``."""
    if phase == "prefill":
        return (token_ids(batch, seq, vocab, device),)
    shape = (batch, kv_heads, kv_len, head_dim)
    past = tuple((example_tensor(shape, dtype, device), example_tensor(shape, dtype, device))
                 for _ in range(num_layers))
    return (token_ids(batch, 1, vocab, device), past)
