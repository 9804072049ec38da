"""Frontends: torch.export (`torch_export`), torch.compile graphs (`fx_graph`), ONNX (`onnx_capture`).

The package is also what ``graphperf.capture`` names, and calling it captures a model:
``graphperf.capture(model, example_inputs, ...)`` is `graphperf.api.capture` (a package and a
function cannot share the name ``graphperf.capture`` otherwise: importing a submodule would rebind
it). Importing this package imports no frontend (nor torch or onnx).
"""

from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..api import capture

        return capture(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
