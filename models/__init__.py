"""Reference workloads in plain PyTorch, built from named configs (``graphperf.models``).

A model is a registered name (``list_models``) or the path of a Hugging Face ``config.json`` of a
family the builders implement (:mod:`.hf_config`: llama, mistral, mixtral, qwen2, gpt2, gptj).

>>> from graphperf.models import build, list_models
>>> [m.name for m in list_models()][:3]
['bert-base', 'gpt2', 'llama2-7b']
>>> build("gpt2", config="tiny", seq=8).description
'gpt2[tiny] prefill batch=1 seq=8 bfloat16'
"""

from __future__ import annotations

from . import registry
from .registry import DTYPES, ModelSpec, Workload, list_models

__all__ = ["DTYPES", "ModelSpec", "Workload", "build", "get_model", "list_models"]


def get_model(name: str) -> ModelSpec:
    """The spec named ``name``, or of the Hugging Face ``config.json`` at ``name`` (a path ending in
    ``.json``); ``KeyError`` listing the known names for an unknown name, ``UsageError`` naming the file
    and field for a config that cannot be mapped."""
    if name.lower().endswith(".json"):
        from .hf_config import spec_from_file

        return spec_from_file(name)
    return registry.get_model(name)


def build(name: str | ModelSpec, **options) -> Workload:
    """``registry.build`` of a registered name, a ``config.json`` path (see `get_model`) or a spec;
    ``options`` are its keyword arguments (config, phase, batch, seq, kv_len, dtype, device, attention)."""
    return registry.build(get_model(name) if isinstance(name, str) else name, **options)
