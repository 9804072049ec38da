"""Serving projections against the published tensor-parallel LLM measurements (shared/reference/measurements.json).

Selection: category ``llm_inference`` records with ``params.tensor_parallel`` whose GPU has a bundled target and
whose model a graphperf.models workload implements, or a Hugging Face config.json of a family it implements
(``benchmarks/hf_configs/``: Llama-2-70B, Mistral-7B-v0.1; the rows marked ``config.json``), with a batch size and
unquantized (bf16/fp16) weights:

- gpt-fast (A100 80GB SXM, batch 1, prompt 5 tokens, torch.compile with CUDA graphs): decode tokens/s, projected
  as ``graphperf serve --batch 1 --input-len 5 --output-len 200 --mode reduce-overhead`` output tokens/s
  (gpt-fast generates 200 tokens by default and divides them by the whole generate() time);
- TensorRT-LLM on Azure ND A100 v4 / ND H100 v5 (batch 16-64, input 128, output 8): throughput, compared with the
  projected ``batch * output / e2e_s`` (graph mode). The source's README says its figure counts input and output
  tokens, but read that way its numbers imply 3-11 s for one batch of an 8B model, ten times what the hardware
  needs; read as output tokens/s they imply 0.2-0.6 s. The other reading's projection is printed too.

- vLLM offline throughput (``vllm bench throughput``, torchao's README, one H100 of unstated variant, TP 1; a
  third group chosen before projecting it, so not fitted to): ``num_prompts`` prompts of ``input_len`` tokens
  generating ``output_len`` each, all admitted at once (32 or 128 prompts, under vLLM's ``max_num_seqs`` and inside
  the KV memory), projected as one batch of ``num_prompts`` in ``reduce-overhead`` mode (vLLM V1 runs the model
  torch.compile'd and replays CUDA graphs) on the h100 (SXM) target, h100-pcie printed as the other reading;
  ``decode_throughput`` compared as output tokens/s, ``prefill_throughput`` (4096 in, 32 out) as total tokens/s
  (the reading of the three vLLM prints: as output tokens/s the figure would mean 132k prompt tokens prefilled
  in 33 ms); ``bfloat16`` and ``float8 rowwise`` (fp8 weights and activations, bf16 KV cache) as stated.

Left out, with the reason printed: int8/int4 weight-only records (no integer weight path in the precision rewrite), the MI250X record (measured on one GCD, the target is the
two-GCD package), the FP8 1000-request records (no batch size: the engine's concurrency is not published).
No per-model correction is fitted: every number is the bundled target as is.

Run: ``.venv/bin/python benchmarks/serving.py [--out benchmarks/serving.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "measurements.json"
HF_CONFIGS = Path(__file__).resolve().parent / "hf_configs"

# A record's model name -> a graphperf.models workload, or the config.json of a model it has no workload for.
MODELS = {"Llama-2-7B": "llama2-7b", "Llama-3.1-8B": "llama3-8b", "Llama 3 8B": "llama3-8b",
          "Llama-3.1-70B": "llama3-70b", "Llama 3 70B": "llama3-70b", "Llama 3 405B": "llama3-405b",
          "Llama 3.1 8B": "llama3-8b", "Llama 3.1 70B": "llama3-70b", "meta-llama/Llama-3.1-8B": "llama3-8b",
          "Llama-2-70B": str(HF_CONFIGS / "meta-llama--Llama-2-70b-hf" / "config.json"),
          # the Azure guide's LLMBenchmark config names mistralai/Mistral-7B-v0.1
          "Mistral 7B": str(HF_CONFIGS / "mistralai--Mistral-7B-v0.1" / "config.json")}


def label(model: str) -> str:
    """A workload name, or the folder of a config.json (``org--name``)."""
    return Path(model).parent.name if model.endswith(".json") else model


def _vllm_offline(r) -> bool:
    """A ``vllm bench throughput`` record of torchao's README: prompts admitted at once, one device."""
    p = r.get("params") or {}
    return r.get("category") == "llm_inference" and "num_prompts" in p and str(r.get("software", "")).startswith("vLLM")


def _target(hardware: str):
    if "MI250X" in hardware:
        return None, "measured on one MI250X GCD; the mi250x target is the two-GCD package"
    if "MI300X" in hardware:
        return "mi300x", ""
    if "A100" in hardware:
        return "a100", ""
    if "H100" in hardware and ("SXM" in hardware or "variant not stated" in hardware):
        return "h100", ""  # an unstated variant: the SXM part, h100-pcie as the other reading
    return None, f"no bundled target for {hardware!r}"


def select(records):
    chosen, skipped = [], []
    for r in records:
        p = r.get("params") or {}
        if r.get("category") != "llm_inference" or ("tensor_parallel" not in p and not _vllm_offline(r)):
            continue
        model = MODELS.get(p.get("model"))
        target, why = _target(r["hardware"])
        weights = str(p.get("weights") or p.get("dtype") or "")
        if model is None:
            skipped.append((r["id"], f"no workload for {p.get('model')}"))
        elif target is None:
            skipped.append((r["id"], why))
        elif "int" in weights:
            skipped.append((r["id"], f"{weights} weights"))
        elif p.get("batch") is None and not _vllm_offline(r):
            skipped.append((r["id"], "no batch size published"))
        elif r["metric"] not in ("decode_throughput", "throughput") and not _vllm_offline(r):
            skipped.append((r["id"], f"metric {r['metric']}"))
        else:
            chosen.append((r, model, target))
    return chosen, skipped


def project(r, model, target, overrides=None):
    """(ServeResult, projected value or None, how): the record's projection on `target` (with `overrides`)."""
    from graphperf.serve import serve as serve_

    def serve(*args, **kwargs):
        return serve_(*args, overrides=overrides, **kwargs)

    p = r["params"]
    if _vllm_offline(r):
        return _project_vllm(r, model, target, serve)
    tp, batch = p["tensor_parallel"], p["batch"]
    if r["metric"] == "decode_throughput":  # gpt-fast
        res = serve(model, target, tp=tp, batch=batch, input_len=p.get("prompt_len") or 5, output_len=200,
                    dtype="bf16", mode="reduce-overhead")
        return res, (res.totals["output_tokens_per_s"] if res.fits else None), "bf16, reduce-overhead"
    dtype = "fp16"
    res = serve(model, target, tp=tp, batch=batch, input_len=p["input_len"], output_len=p["output_len"], dtype=dtype)
    note = "fp16, graph"
    if not res.fits:  # dtype "not stated": a 405B on 8 x 80 GB runs in fp8
        res = serve(model, target, tp=tp, batch=batch, input_len=p["input_len"], output_len=p["output_len"],
                    dtype="fp8")
        note = "fp16 does not fit; fp8 weights, bf16 KV, graph"
    # The source's README says its tokens/s count input and output tokens; its figures imply an end-to-end time of
    # batch * (input + output) / value = 3-11 s for a batch of 64 x 136 tokens of an 8B model, ten times what
    # prefill and 8 decode steps take on these GPUs, while batch * output / value gives 0.2-0.6 s. We compare the
    # projected output tokens/s (batch * output / e2e) and report the other reading's error too.
    if not res.fits:
        return res, None, note
    note += "; also_input_plus_output=" + f"{batch * (p['input_len'] + p['output_len']) / res.totals['e2e_s']:.1f}"
    return res, res.totals["output_tokens_per_s"], note


def _project_vllm(r, model, target, serve):
    """A vLLM offline-throughput record: the prompts as one batch, reduce-overhead, its stated dtype."""
    p = r["params"]
    dtype = "fp8" if "float8" in p["dtype"] else "bf16"
    n, i, o = p["num_prompts"], p["input_len"], p["output_len"]
    res = serve(model, target, tp=1, batch=n, input_len=i, output_len=o, dtype=dtype, mode="reduce-overhead")
    if not res.fits:
        return res, None, f"{dtype}, reduce-overhead; {n} prompts do not fit as one batch"
    total = n * (i + o) / res.totals["e2e_s"]
    if r["metric"] == "prefill_throughput":
        return res, total, f"{dtype}, reduce-overhead, {n} prompts as one batch, total tokens/s"
    return res, res.totals["output_tokens_per_s"], (f"{dtype}, reduce-overhead, {n} prompts as one batch, output "
                                                    f"tokens/s; total_tokens_per_s={total:.1f}")


def other_readings(r, model, target, value):
    """Errors under readings the record leaves open, printed beside the main one (never replacing it):

    - ``error_fp8``: the Azure records that state no dtype (H100) with fp8 weights and an fp8 KV cache. At the
      records' commit (8fd0c6e) the guide's config.json sets ``"precision": "fp8"`` for every model it runs
      (Mistral-7B-v0.1, Meta-Llama-3-8B/70B, Llama-2-70B-hf), and Benchmarks/LLMBenchmark.py then builds the engine
      with ``quantize.py --qformat fp8 --kv_cache_dtype fp8`` (the same config lists output length 128, not the
      published 8, so it is not certain it is the config that ran);
    - ``error_without_collective_base``: TP > 1 with the target's fitted per-call ``collective_base_us`` set to 1e-6 us (~0)
      (a diagnostic: that base is fitted on host-timed nccl-tests calls; gpt-fast and TensorRT-LLM issue their
      all-reduces inside CUDA graphs).
    """
    from graphperf.serve import serve

    p, out = r["params"], {}
    if _vllm_offline(r) and value is not None:  # the H100's variant is not stated: the PCIe part
        _, v, _ = project(r, model, "h100-pcie")
        out["error_h100_pcie"] = None if v is None else (v - r["value"]) / r["value"]
        return out
    if r["metric"] == "throughput" and p.get("dtype") == "not stated":
        res = serve(model, target, tp=p["tensor_parallel"], batch=p["batch"], input_len=p["input_len"],
                    output_len=p["output_len"], dtype="fp8", kv_dtype="fp8")
        out["error_fp8"] = (res.totals["output_tokens_per_s"] - r["value"]) / r["value"] if res.fits else None
    if p["tensor_parallel"] > 1 and value is not None:
        _, v, _ = project(r, model, target, overrides={"collective_base_us": 1e-6})  # > 0 required
        out["error_without_collective_base"] = None if v is None else (v - r["value"]) / r["value"]
    return out


def all_reduce_checks(records):
    """The measured all-reduces of the LLMCompass A100 TP4 records (GPT-3 175B layer, fp16 [B, S, 12288]) against
    `collective_time` on the a100 target (per-call base + steps x hop latency + wire bytes / achieved bandwidth),
    alone: no kernel launch around it."""
    from graphperf.ir import TensorType
    from graphperf.rules.collective import collective_time
    from graphperf.target import load_target

    a100 = load_target("a100")
    rows = []
    for r in records:
        p = r.get("params") or {}
        if str(p.get("op", "")).startswith("AllReduce"):
            tokens = p["batch"] * p.get("seq_len", 1)
            x = TensorType((tokens, p["d_model"]), "float16")
            t = collective_time("all_reduce", {"group_size": p["tensor_parallel"]}, x, x, a100)
            rows.append({"id": r["id"], "payload_bytes": x.nbytes, "measured_s": r["value"] * 1e-3,
                         "projected_s": t.call_s + t.link_s,  # a standalone call: the host's base, then the link
                         "error": (t.call_s + t.link_s - r["value"] * 1e-3) / (r["value"] * 1e-3)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the per-record results as JSON here")
    args = ap.parse_args(argv)
    records = json.loads(REFERENCE.read_text())
    chosen, skipped = select(records)
    rows = []
    for r, model, target in chosen:
        start = time.perf_counter()
        res, value, note = project(r, model, target)
        err = None if value is None else (value - r["value"]) / r["value"]
        others = other_readings(r, model, target, value)
        p = dict(r["params"])
        p.setdefault("tensor_parallel", 1)
        p.setdefault("batch", p.get("num_prompts"))
        rows.append({"id": r["id"], "model": label(model), "via": "config.json" if model.endswith(".json") else "workload",
                     "target": target, "tp": p["tensor_parallel"], "batch": p["batch"],
                     "metric": r["metric"], "vllm_offline": _vllm_offline(r), "measured": r["value"], "projected": value, "error": err, "how": note,
                     **others,
                     "tpot_s": res.totals["tpot_s"], "ttft_s": res.totals["ttft_s"],
                     "collective_share_of_decode": None if not res.decode else
                     res.decode["samples"][0]["breakdown"]["collective_s"] / res.decode["samples"][0]["latency_s"],
                     "seconds": round(time.perf_counter() - start, 1)})
        e = "-" if err is None else f"{err:+.1%}"
        extra = "".join(f"; {k} {v:+.1%}" for k, v in others.items() if v is not None)
        print(f"{r['id']} {label(model):<12} {target:<5} tp{p['tensor_parallel']} b{p['batch']:<3} measured {r['value']:>9.2f} "
              f"projected {value or float('nan'):>9.2f} error {e:>7} ({note}{extra})", flush=True)
    for rid, why in skipped:
        print(f"skipped {rid}: {why}")
    errors = [abs(x["error"]) for x in rows if x["error"] is not None]
    tp_errors = [abs(x["error"]) for x in rows if x["error"] is not None and x["tp"] > 1]
    config_errors = [abs(x["error"]) for x in rows if x["error"] is not None and x["via"] == "config.json"]
    summary = {"records": len(rows), "median_abs_error": statistics.median(errors) if errors else None,
               "median_abs_error_tp_gt_1": statistics.median(tp_errors) if tp_errors else None,
               "records_via_config_json": len(config_errors),
               "median_abs_error_via_config_json": statistics.median(config_errors) if config_errors else None,
               "skipped": [{"id": i, "why": w} for i, w in skipped]}
    for key in ("error_fp8", "error_without_collective_base"):  # the other readings in place of the main one
        g = [abs(x[key] if x.get(key) is not None else x["error"]) for x in rows if x["error"] is not None]
        summary[f"median_abs_error_reading_{key}"] = statistics.median(g) if g else None
    for group in ("decode_throughput", "throughput"):  # gpt-fast, TensorRT-LLM; vLLM has its own figure below
        g = [abs(x["error"]) for x in rows if x["metric"] == group and not x["vllm_offline"] and x["error"] is not None]
        summary[f"median_abs_error_{group}"] = statistics.median(g) if g else None
    g = [abs(x["error"]) for x in rows if x["vllm_offline"] and x["error"] is not None]
    summary["median_abs_error_vllm_offline"] = statistics.median(g) if g else None
    summary["all_reduce_checks"] = all_reduce_checks(records)
    for c in summary["all_reduce_checks"]:
        print(f"{c['id']} all_reduce tp4 {c['payload_bytes']:>11,} B  measured {c['measured_s'] * 1e6:8.1f} us  "
              f"link model {c['projected_s'] * 1e6:8.1f} us  error {c['error']:+.1%}")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("skipped", "all_reduce_checks")}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
