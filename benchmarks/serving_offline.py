"""Offline-throughput projections against the Azure benchmarking guide's 1000-request records.

The records (shared/reference/measurements.json, llm_inference-0123..0146): Llama 3.1 8B (TP 1) and 70B (TP 8),
FP8, 1000 requests of fixed input/output length (128/128 .. 2048/2048), measured on Azure ND H100 v5 with
TensorRT-LLM and on ND MI300X v5 with vLLM. How each engine ran is read off the guide's own scripts
(yosoyjay/AI-benchmarking-guide, Benchmarks/NVIDIA/LLMBenchmark.py, Benchmarks/AMD/LLMBenchmark.py, config.json),
and set down here before projecting:

- TensorRT-LLM v0.15 (`trtllm-bench build --quantization FP8` on the dataset with the largest input + output,
  2048 + 2048, then `trtllm-bench throughput`): FP8 weights and KV cache; the engine's ``max_batch_size`` is
  trtllm-bench's own rule (tensorrt_llm/bench/build/tuning.py `calc_engine_setting`, `engine_max_batch` below):
  the KV memory left by the weights (95% of it) over ``(2048 + 2048)`` tokens of KV per request, rounded up to a
  multiple of 32 (under 256), 128 (under 1024) or 256, at least 64. Compared as output tokens/s.
- vLLM (rocm/vllm-dev 20241121, `benchmark_throughput.py --quantization fp8 --kv-cache-dtype fp8
  --gpu-memory-utilization 0.90 --max-num-seqs 3000 --num-scheduler-steps 10 --enable-chunked-prefill false`):
  FP8 weights and KV cache, at most 3000 in flight. The guide's script keeps word 6 of the line
  ``Throughput: R requests/s, T total tokens/s, O output tokens/s``, the output tokens/s.

Both are projected by `graphperf.serve.serve_requests` (graphperf/serve/offline.py): 1000 requests in waves of
``B = min(1000, max_batch, max_batch_that_fits)`` in graph mode (both engines replay CUDA/HIP graphs), with the
bundled h100 and mi300x targets as they are. Nothing is fitted to these records.

Run: ``.venv/bin/python benchmarks/serving_offline.py [--out /tmp/offline.json]`` (about 10 minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "measurements.json"
MODELS = {"Llama 3.1 8B": "llama3-8b", "Llama 3.1 70B": "llama3-70b"}
BUILD_LENGTHS = (2048, 2048)  # the dataset the engine is built from: the largest input + output in config.json


def engine_max_batch(params: int, layers: int, kv_heads: int, head_dim: int, tp: int, device_gib: float,
                     kv_bytes: int = 1, weight_bytes: int = 1, fraction: float = 0.95) -> int:
    """trtllm-bench's engine ``max_batch_size`` (tensorrt_llm/bench/build/tuning.py, `calc_engine_setting` and
    `finetune_setting`): requests whose KV cache at the build lengths fits in `fraction` of the memory the weights
    leave, rounded up to the engine's steps."""
    per_token_gib = 2 * layers * max(tp, kv_heads) * head_dim * kv_bytes / 1024 ** 3
    available = device_gib * tp - params / 1e9 * weight_bytes
    requests = available * fraction / per_token_gib / sum(BUILD_LENGTHS)
    raw = min(requests, 4096)
    if raw < 256:
        return max(64, 32 * math.ceil(raw / 32))
    if raw < 1024:
        return 128 * math.ceil(raw / 128)
    return 256 * math.ceil(raw / 256)


def select(records):
    chosen = []
    for r in records:
        p = r.get("params") or {}
        if r.get("category") == "llm_inference" and p.get("num_requests") and p.get("model") in MODELS:
            engine = "tensorrt-llm" if "H100" in r["hardware"] else "vllm" if "MI300X" in r["hardware"] else None
            if engine:
                chosen.append((r, MODELS[p["model"]], "h100" if engine == "tensorrt-llm" else "mi300x", engine))
    return chosen


def cap(model: str, target, tp: int, engine: str) -> int:
    """The engine's cap on sequences in flight."""
    if engine == "vllm":
        return 3000  # --max-num-seqs
    from graphperf import models
    from graphperf.serve.graphs import capture_phase

    cfg = models.get_model(model).configs["full"]
    params = capture_phase(model, "full", "decode", 1, 2, "bfloat16").meta["parameter_count"]
    # trtllm-bench reads the memory CUDA reports: an 80 GB H100 shows 81,559 MiB (79.6 GiB) in nvidia-smi, its
    # datasheet's 80 GB being binary; the target's memory_gb is taken as GiB (within 0.5% of what CUDA reports)
    return engine_max_batch(params, cfg.num_layers, cfg.num_kv_heads, cfg.hidden_size // cfg.num_heads, tp,
                            target.memory_gb)


def main(argv=None) -> int:
    from graphperf.errors import UsageError
    from graphperf.serve import serve_requests
    from graphperf.target import load_target

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the per-record results as JSON here")
    args = ap.parse_args(argv)
    rows = []
    for r, model, target, engine in select(json.loads(REFERENCE.read_text())):
        start = time.perf_counter()
        p = r["params"]
        tgt = load_target(target)
        max_batch = cap(model, tgt, p["tensor_parallel"], engine)
        try:
            res = serve_requests(model, tgt, requests=p["num_requests"], max_batch=max_batch,
                                 tp=p["tensor_parallel"], input_len=p["input_len"], output_len=p["output_len"],
                                 dtype="fp8", kv_dtype="fp8")
        except UsageError as e:  # a target without the figures a record needs: said, not projected
            rows.append({"id": r["id"], "model": model, "target": target, "engine": engine,
                         "tp": p["tensor_parallel"], "measured": r["value"], "projected": None, "error": None,
                         "not_projected": str(e)})
            print(f"{r['id']} {engine:<12} {model:<10} tp{p['tensor_parallel']} not projected: {e}", flush=True)
            continue
        value = res.totals["output_tokens_per_s"] if res.offline.get("concurrency") else None
        err = None if value is None else (value - r["value"]) / r["value"]
        rows.append({"id": r["id"], "model": model, "target": target, "engine": engine, "tp": p["tensor_parallel"],
                     "input_len": p["input_len"], "output_len": p["output_len"], "max_batch": max_batch,
                     "concurrency": res.offline.get("concurrency"), "waves": res.offline.get("waves"),
                     "measured": r["value"], "projected": value, "error": err,
                     "ttft_s": res.totals["ttft_s"], "tpot_s": res.totals["tpot_s"],
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{r['id']} {engine:<12} {model:<10} tp{p['tensor_parallel']} {p['input_len']:>4}/{p['output_len']:<4} "
              f"cap {max_batch:>4} in flight {rows[-1]['concurrency']:>4} measured {r['value']:>8.0f} "
              f"projected {value or float('nan'):>8.0f} error {'-' if err is None else f'{err:+.1%}'}", flush=True)
    summary = {"records": len(rows)}
    for engine in ("tensorrt-llm", "vllm", None):
        g = [abs(x["error"]) for x in rows if x["error"] is not None and engine in (None, x["engine"])]
        summary[f"median_abs_error_{engine or 'all'}"] = statistics.median(g) if g else None
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
