"""Workloads from a Hugging Face ``config.json``: the model a user serves, without writing code.

:func:`spec_from_file` reads a ``config.json`` (no network, no weights) and returns a :class:`ModelSpec`
whose only config, ``"full"``, is the matching builder's config of this package, so ``build``, ``graphperf
analyze path/config.json`` and ``graphperf serve path/config.json`` treat it like a named workload (built on
meta tensors). One mapping function per ``model_type``:

==============  ===================  ========================================================================
model_type      builder              fields read (HF name -> builder field)
==============  ===================  ========================================================================
llama, mistral  :mod:`.llama`        hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                                     num_key_value_heads (default: num_attention_heads), vocab_size,
                                     max_position_embeddings, rope_theta (10000), rms_norm_eps (1e-6),
                                     rope_scaling (llama3 scaling kept; linear/dynamic/yarn change the rotary
                                     tables' values, not the graph's costs), tie_word_embeddings (False),
                                     attention_bias (False), sliding_window (caps ``max_positions``)
mixtral         :mod:`.mixtral`      the llama fields plus num_local_experts, num_experts_per_tok
qwen2           :mod:`.llama`        the llama fields, q/k/v projections with bias (Qwen2's layout);
                                     ``sliding_window`` caps the positions only when ``use_sliding_window``
gpt2            :mod:`.gpt2`         n_embd, n_layer, n_head, vocab_size, n_positions, layer_norm_epsilon;
                                     n_inner must be null or 4 * n_embd (the builder's MLP)
gptj            :mod:`.gptj`         n_embd, n_layer, n_head, vocab_size, n_positions, rotary_dim (default: the
                                     whole head), n_inner (4 * n_embd), layer_norm_epsilon; untied LM head
==============  ===================  ========================================================================

``torch_dtype`` (or the newer ``dtype``) is the workload's default dtype (float32/float16/bfloat16; bfloat16
when absent). ``head_dim`` must equal ``hidden_size / num_attention_heads`` where given (the builders derive
it). A sliding window is not modelled: where a config sets one, its length caps the positions the workload
accepts (vLLM does the same for backends without sliding-window attention), so every projection is exact.
``quantization_config`` is not read: the weights are projected in the workload's dtype (``serve --dtype fp8``
states a quantized checkpoint).

Guarantees: an unreadable file, an unknown ``model_type``, a missing required field or a value the builder
does not implement raises one-line :class:`~graphperf.errors.UsageError` (exit 2) naming the file and the field.

Example
-------
>>> import json, tempfile, os
>>> from graphperf.models.hf_config import spec_from_file
>>> path = os.path.join(tempfile.mkdtemp(), "config.json")
>>> _ = open(path, "w").write(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4,
...                                       "vocab_size": 128, "n_positions": 128}))
>>> spec = spec_from_file(path)
>>> spec.family, spec.configs["full"].hidden_size, spec.default_dtype
('gpt2', 64, 'bfloat16')
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any, Callable

from graphperf.errors import UsageError

from .layers import Llama3RopeScaling
from .registry import DTYPES, ModelSpec

__all__ = ["spec_from_file", "config_from_dict", "MODEL_TYPES"]

_REQUIRED = object()


class _Fields:
    """Typed reads of a config's fields; every failure is a UsageError naming the file and the field."""

    def __init__(self, data: dict, where: str, model_type: str) -> None:
        self.data, self.where, self.model_type = data, where, model_type

    def fail(self, field: str, problem: str) -> UsageError:
        return UsageError(f"{self.where}: field {field!r} {problem} (model_type {self.model_type!r})")

    def get(self, field: str, default: Any = _REQUIRED) -> Any:
        value = self.data.get(field)
        if value is None:
            if default is _REQUIRED:
                raise self.fail(field, "is missing; it is required")
            return default
        return value

    def positive_int(self, field: str, default: Any = _REQUIRED) -> int | None:
        value = self.get(field, default)
        if value is None:  # an optional field, absent or null
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(field, f"must be a positive integer, got {value!r}")
        return value

    def positive_float(self, field: str, default: Any = _REQUIRED) -> float:
        value = self.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(field, f"must be a positive number, got {value!r}")
        return float(value)

    def flag(self, field: str, default: bool = False) -> bool:
        value = self.get(field, default)
        if not isinstance(value, bool):
            raise self.fail(field, f"must be true or false, got {value!r}")
        return value

    def require(self, field: str, allowed: tuple, default: Any) -> Any:
        value = self.get(field, default)
        if value not in allowed:
            raise self.fail(field, f"is {value!r}; graphperf.models implements {', '.join(map(repr, allowed))}")
        return value


def _rope_scaling(f: _Fields) -> Llama3RopeScaling | None:
    scaling = f.get("rope_scaling", None)
    if scaling is None:
        return None
    if not isinstance(scaling, dict):
        raise f.fail("rope_scaling", f"must be an object or null, got {scaling!r}")
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "llama3":
        s = _Fields(scaling, f.where, f.model_type)
        return Llama3RopeScaling(factor=s.positive_float("factor"), low_freq_factor=s.positive_float("low_freq_factor"),
                                 high_freq_factor=s.positive_float("high_freq_factor"),
                                 original_max_positions=s.positive_int("original_max_position_embeddings"))
    if kind in ("default", "linear", "dynamic", "yarn"):
        return None  # same graph, other table values (module docstring)
    raise f.fail("rope_scaling", f"has rope_type {kind!r}; implemented: llama3, linear, dynamic, yarn, default")


def _llama_fields(f: _Fields) -> dict[str, Any]:
    """The LlamaConfig fields shared by llama, mistral, mixtral and qwen2."""
    hidden, heads = f.positive_int("hidden_size"), f.positive_int("num_attention_heads")
    kv_heads = f.positive_int("num_key_value_heads", heads)
    if hidden % heads:
        raise f.fail("num_attention_heads", f"({heads}) does not divide hidden_size ({hidden})")
    if heads % kv_heads:
        raise f.fail("num_key_value_heads", f"({kv_heads}) does not divide num_attention_heads ({heads})")
    head_dim = f.positive_int("head_dim", hidden // heads)
    if head_dim != hidden // heads:
        raise f.fail("head_dim", f"is {head_dim}; the builder needs hidden_size / num_attention_heads = "
                     f"{hidden // heads}")
    f.require("hidden_act", ("silu",), "silu")
    if f.flag("mlp_bias"):
        raise f.fail("mlp_bias", "is true; the SwiGLU builder has no MLP bias")
    bias = f.flag("attention_bias")
    return dict(vocab_size=f.positive_int("vocab_size"), hidden_size=hidden,
                intermediate_size=f.positive_int("intermediate_size"), num_layers=f.positive_int("num_hidden_layers"),
                num_heads=heads, num_kv_heads=kv_heads, max_positions=f.positive_int("max_position_embeddings"),
                rope_theta=f.positive_float("rope_theta", 10000.0), rms_norm_eps=f.positive_float("rms_norm_eps", 1e-6),
                rope_scaling=_rope_scaling(f), tie_embeddings=f.flag("tie_word_embeddings"),
                qkv_bias=bias, o_bias=bias)


def _windowed(fields: dict[str, Any], f: _Fields, applies: bool = True) -> dict[str, Any]:
    window = f.positive_int("sliding_window", None) if applies else None
    if window is not None and window < fields["max_positions"]:
        fields["max_positions"] = window
    return fields


def _llama(f: _Fields):
    from .llama import LlamaConfig

    return "llama", LlamaConfig(**_windowed(_llama_fields(f), f))


def _qwen2(f: _Fields):
    from .llama import LlamaConfig

    fields = _windowed(_llama_fields(f), f, applies=f.flag("use_sliding_window"))
    return "llama", LlamaConfig(**{**fields, "qkv_bias": True})


def _mixtral(f: _Fields):
    from .mixtral import MixtralConfig

    experts = f.positive_int("num_local_experts")
    top_k = f.positive_int("num_experts_per_tok")
    if top_k > experts:
        raise f.fail("num_experts_per_tok", f"({top_k}) exceeds num_local_experts ({experts})")
    return "mixtral", MixtralConfig(**_windowed(_llama_fields(f), f), num_experts=experts, experts_per_token=top_k)


def _gptj(f: _Fields):
    from .gptj import GPTJConfig

    hidden, heads = f.positive_int("n_embd"), f.positive_int("n_head")
    if hidden % heads:
        raise f.fail("n_head", f"({heads}) does not divide n_embd ({hidden})")
    rotary_dim = f.positive_int("rotary_dim", hidden // heads)
    if rotary_dim > hidden // heads or rotary_dim % 2:
        raise f.fail("rotary_dim", f"is {rotary_dim}; it must be even and at most the head size {hidden // heads}")
    f.require("activation_function", ("gelu_new", "gelu_pytorch_tanh", "gelu"), "gelu_new")
    if f.flag("tie_word_embeddings"):
        raise f.fail("tie_word_embeddings", "is true; GPT-J's LM head is untied")
    return "gptj", GPTJConfig(vocab_size=f.positive_int("vocab_size"), hidden_size=hidden,
                              intermediate_size=f.positive_int("n_inner", 4 * hidden),
                              num_layers=f.positive_int("n_layer"), num_heads=heads,
                              max_positions=f.positive_int("n_positions"), rotary_dim=rotary_dim,
                              layer_norm_eps=f.positive_float("layer_norm_epsilon", 1e-5))


def _gpt2(f: _Fields):
    from .gpt2 import GPT2Config

    hidden, heads = f.positive_int("n_embd"), f.positive_int("n_head")
    if hidden % heads:
        raise f.fail("n_head", f"({heads}) does not divide n_embd ({hidden})")
    inner = f.positive_int("n_inner", 4 * hidden)
    if inner != 4 * hidden:
        raise f.fail("n_inner", f"is {inner}; the builder's MLP is 4 * n_embd = {4 * hidden}")
    f.require("activation_function", ("gelu_new", "gelu_pytorch_tanh", "gelu"), "gelu_new")
    if not f.flag("tie_word_embeddings", True):
        raise f.fail("tie_word_embeddings", "is false; the builder ties the LM head to the embedding")
    return "gpt2", GPT2Config(vocab_size=f.positive_int("vocab_size"), hidden_size=hidden,
                              num_layers=f.positive_int("n_layer"), num_heads=heads,
                              max_positions=f.positive_int("n_positions"),
                              layer_norm_eps=f.positive_float("layer_norm_epsilon", 1e-5))


# model_type -> mapping onto a builder: (family, builder config)
MODEL_TYPES: dict[str, Callable[[_Fields], tuple[str, Any]]] = {
    "gpt2": _gpt2, "gptj": _gptj, "llama": _llama, "mistral": _llama, "mixtral": _mixtral, "qwen2": _qwen2,
}


def config_from_dict(data: dict, where: str = "config.json") -> tuple[str, Any, str]:
    """``(family, builder config, default dtype)`` of a parsed ``config.json``; `where` names it in errors."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a Hugging Face config.json holds a JSON object, not {type(data).__name__}")
    model_type = data.get("model_type")
    if model_type is None:
        raise UsageError(f"{where}: field 'model_type' is missing; it names the architecture "
                         f"({', '.join(MODEL_TYPES)})")
    if model_type not in MODEL_TYPES:
        raise UsageError(f"{where}: field 'model_type' is {model_type!r}, which graphperf.models does not "
                         f"implement; supported: {', '.join(MODEL_TYPES)}")
    f = _Fields(data, where, model_type)
    family, cfg = MODEL_TYPES[model_type](f)
    dtype = f.get("torch_dtype", f.get("dtype", "bfloat16"))
    if dtype not in DTYPES:
        raise f.fail("torch_dtype", f"is {dtype!r}; implemented: {', '.join(DTYPES)}")
    return family, cfg, dtype


def _describe(model_type: str, cfg: Any, where: str) -> str:
    heads = f"{cfg.num_heads} heads" + (f" / {cfg.num_kv_heads} KV heads" if cfg.num_kv_heads != cfg.num_heads else "")
    parts = [f"{model_type} from {where}: {cfg.num_layers} layers, d={cfg.hidden_size}, {heads}"]
    if hasattr(cfg, "intermediate_size"):
        parts.append(f"{'GELU MLP' if model_type == 'gptj' else 'SwiGLU'} {cfg.intermediate_size}")
    if hasattr(cfg, "num_experts"):
        parts.append(f"{cfg.num_experts} experts, top-{cfg.experts_per_token}")
    parts.append(f"vocab {cfg.vocab_size}, {cfg.max_positions} positions")
    return ", ".join(parts)


def spec_from_file(path: str) -> ModelSpec:
    """The workload of the Hugging Face ``config.json`` at `path`, named `path` (module docstring)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a JSON file ({exc})") from None
    family, cfg, dtype = config_from_dict(data, path)
    from .gpt2 import SPECS as GPT2_SPECS
    from .gptj import SPEC as GPTJ_SPEC
    from .llama import SPECS as LLAMA_SPECS
    from .mixtral import SPECS as MIXTRAL_SPECS

    template = {"gpt2": GPT2_SPECS[0], "gptj": GPTJ_SPEC, "llama": LLAMA_SPECS[0], "mixtral": MIXTRAL_SPECS[0]}[family]
    return replace(template, name=path, description=_describe(data["model_type"], cfg, os.path.basename(path)),
                   configs={"full": cfg}, default_dtype=dtype, source=f"Hugging Face config.json: {path}")
