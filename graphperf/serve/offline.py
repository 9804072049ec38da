"""Offline throughput: ``requests`` prompts of equal length served with at most ``max_batch`` in flight.

What an offline benchmark (``trtllm-bench throughput``, vLLM's ``benchmark_throughput``) measures: every request
is there at the start, each has ``input_len`` prompt tokens and generates ``output_len``, and the engine keeps at
most ``B`` sequences in flight, refilling a slot when a sequence ends. With equal lengths the sequences admitted
together also end together, so continuous batching runs them in waves::

    B       = min(requests, max_batch, max_batch_that_fits)     # the engine's cap, the KV memory's
    waves   = requests // B full waves of B sequences, then one of requests % B (if any)
    total_s = waves * e2e_s(B) + e2e_s(requests % B)            # each wave: its prefill, then its decode steps
    output_tokens_per_s = requests * output_len / total_s

with ``e2e_s(b)`` the generation of `graphperf.serve.serve` at batch b (its prefill and every decode step, the
KV cache growing; the decode steps of a wave are not mixed with the next wave's prefill). ``max_batch_that_fits``
is serve's: weights, the KV cache at ``input_len + output_len`` positions and the prefill's activations within
``memory_fraction`` of the device memory (an engine that pages its KV cache admits about as many). With expert
parallelism B is rounded down to a multiple of ep (every group serves its share).
"""

from __future__ import annotations

from typing import Any, Optional

from graphperf.errors import UsageError

__all__ = ["serve_requests", "concurrency"]


def concurrency(requests: int, max_batch: Optional[int], fits: Optional[int], ep: int = 1) -> int:
    """B: the sequences in flight, the smallest of the requests, the engine's cap and what the memory holds,
    a multiple of `ep`."""
    b = min(requests, max_batch or requests, requests if fits is None else fits)
    return b - b % ep


def serve_requests(model: str, target: Any = "h100", requests: int = 1000, max_batch: Optional[int] = None,
                   **kwargs):
    """Project `requests` equal requests served with at most `max_batch` in flight (module docstring).

    Parameters
    ----------
    model, target
        As `graphperf.serve.serve`.
    requests : int
        Requests of ``input_len`` prompt tokens generating ``output_len`` each, all present at the start.
    max_batch : int, optional
        The engine's cap on sequences in flight (TensorRT-LLM ``max_batch_size``, vLLM ``max_num_seqs``); default:
        only the memory caps it.
    **kwargs
        `graphperf.serve.serve`'s other arguments (tp, pp, ep, input_len, output_len, dtype, ...), not ``batch``.

    Returns
    -------
    ServeResult
        The full wave's generation (its ttft, tpot, steps and memory), with ``totals`` ``e2e_s`` the time of all
        requests and ``output_tokens_per_s`` (and per device, ``usd_per_million_tokens``) over it, and ``offline``
        (requests, concurrency, waves, the last wave's batch, total_s, total_tokens_per_s).

    Example
    -------
    >>> from graphperf.serve.offline import serve_requests
    >>> r = serve_requests("llama3-8b", "h100", requests=5, max_batch=2, input_len=16, output_len=4, config="tiny")
    >>> r.offline["concurrency"], r.offline["waves"], r.offline["last_wave_batch"]
    (2, 2, 1)
    """
    from .generation import serve

    if "batch" in kwargs:
        raise UsageError("--requests sets the batch (the sequences in flight); leave --batch out")
    for what, value in (("--requests", requests), ("--max-batch", max_batch)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UsageError(f"{what} {value!r}: must be an integer >= 1")
    ep, u = kwargs.get("ep", 1), kwargs.get("micro_batches", 1)
    smallest = ep * u  # one sequence per expert-parallel group and micro-batch
    probe = serve(model, target, batch=smallest, **kwargs)
    b = concurrency(requests, max_batch, probe.totals["max_batch_that_fits"], ep)
    if not probe.fits or b < smallest:
        probe.notes.append(f"offline: fewer than {smallest} sequence(s) in flight (ep {ep} x {u} micro-batches) "
                           "fit or are allowed; not projected")
        probe.offline = {"requests": requests, "concurrency": 0, "max_batch": max_batch}
        return probe
    full = probe if b == ep else serve(model, target, batch=b, **kwargs)
    waves, rest = divmod(requests, b)
    rest_e2e = 0.0
    if rest:
        last = rest + (-rest) % ep  # a multiple of ep (an idle slot in a group costs what a sequence does)
        tail = {**kwargs, "micro_batches": min(u, last // ep)} if u > 1 else kwargs
        rest_e2e = serve(model, target, batch=last, **tail).totals["e2e_s"]
    total_s = waves * full.totals["e2e_s"] + rest_e2e
    input_len, output_len = kwargs.get("input_len", 2048), kwargs.get("output_len", 256)
    devices = full.settings["devices"]
    tokens_per_s = requests * output_len / total_s
    full.totals.update(e2e_s=total_s, output_tokens_per_s=tokens_per_s,
                       output_tokens_per_s_per_device=tokens_per_s / devices)
    if full.settings.get("usd_per_hour") is not None:
        full.totals["usd_per_million_tokens"] = full.settings["usd_per_hour"] * devices / 3600 / tokens_per_s * 1e6
    full.offline = {"requests": requests, "max_batch": max_batch, "concurrency": b,
                    "waves": waves + (1 if rest else 0), "last_wave_batch": rest or b, "total_s": total_s,
                    "total_tokens_per_s": requests * (input_len + output_len) / total_s}
    cap = "the engine's cap" if max_batch == b else "what the memory holds" if b < requests else "all of them"
    full.notes.append(f"offline: {requests} requests, {b} in flight ({cap}): {waves} wave(s) of {b}"
                      + (f" and one of {rest}" if rest else "")
                      + "; e2e_s and the throughput are over all requests, ttft and tpot those of a full wave")
    return full
