"""Serving projections: a whole generation (prefill, then decode steps as the KV cache grows) on `tp` devices.

`serve(model, target, tp, batch, input_len, output_len, ...)` returns a `ServeResult` (``to_dict()`` is the
JSON, schema ``graphperf.serve/1``); `serve_requests(model, target, requests, max_batch, ...)` projects many
equal requests with a cap on those in flight (offline throughput, graphperf/serve/offline.py); ``graphperf serve`` is
the command (graphperf/serve/command.py). The graphs
are the ones graphperf.models captures on meta tensors, sharded by passes/shard.py (tensor parallelism with its
collectives, priced on the target's links by graphperf/rules/collective.py) and queued in the execution model.
"""

from .generation import SCHEMA, ServeResult, serve
from .offline import serve_requests

__all__ = ["SCHEMA", "ServeResult", "serve", "serve_requests"]
