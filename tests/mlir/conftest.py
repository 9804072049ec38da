"""The MLIR-level tests need torch-mlir (the optional extra `mlir`, installed by `make test`)."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch_mlir") else ["test_*.py"]
