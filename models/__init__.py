"""Reference workloads in plain PyTorch, built from named configs (``graphperf.models``).

>>> from graphperf.models import build, list_models
>>> [m.name for m in list_models()][:3]
['bert-base', 'gpt2', 'llama2-7b']
>>> build("gpt2", config="tiny", seq=8).description
'gpt2[tiny] prefill batch=1 seq=8 bfloat16'
"""

from .registry import DTYPES, ModelSpec, Workload, build, get_model, list_models

__all__ = ["DTYPES", "ModelSpec", "Workload", "build", "get_model", "list_models"]
