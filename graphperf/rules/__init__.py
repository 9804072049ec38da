"""Cost rules, one op family per module; importing this package registers them all.

After `import graphperf.rules`, every op in `graphperf.ops.CANONICAL` has a rule (`rule_for`),
and `view` is registered free (`is_free`). tests/rules/test_registry_meta.py pins both.
"""

from . import attention, conv, data_movement, elementwise, gather, matmul, norm, pooling, reduction  # noqa: F401
from . import fused  # noqa: F401  (what-if fused groups)
from . import decomposition, recurrent, rotary, sampling, spectral  # noqa: F401  (ONNX op families)
from . import linalg  # noqa: F401  (MLIR level: linalg ops from torch-mlir)
from . import backward  # noqa: F401  (training graphs: backward ops, losses; after the rules it builds on)
from . import collective  # noqa: F401  (all_reduce, all_gather, reduce_scatter, all_to_all)
from .registry import FREE, Rule, is_free, register, registered, rule_for

__all__ = ["FREE", "Rule", "is_free", "register", "registered", "rule_for"]
