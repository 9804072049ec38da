"""Pipeline parallelism in a served step: its stages, the sends between them and the two schedules.

- `stages` splits a sharded graph into ``pp`` stages (passes/shard.py `split_pipeline`);
- `send_s` prices the send of a stage boundary's activation on the link between the two stages' devices
  (the scale-out network when they sit in different nodes, `crosses_nodes`);
- `pipeline_step_s` is the fill-and-drain makespan of ``u`` micro-batches (the prefill), `bubble_fraction` its
  idle share;
- `steady_decode_s` is the period of ``u`` micro-batches circulating without a barrier (the decode, as engines run
  it), `steady_bubble_fraction` its idle share.
"""

from __future__ import annotations

from typing import Optional

from graphperf.errors import UsageError

__all__ = ["stages", "crosses_nodes", "send_s", "pipeline_step_s", "bubble_fraction", "steady_decode_s",
           "steady_bubble_fraction"]


def stages(graph, pp: int):
    """The pipeline stages of `graph` (passes/shard.py `split_pipeline`); one stage, the graph itself, for pp 1."""
    from graphperf.passes.shard import PipelineStage, split_pipeline

    return [PipelineStage(graph, (0, 0), [], 0)] if pp == 1 else split_pipeline(graph, pp)


def crosses_nodes(stage: int, width: int, per_node: Optional[int]) -> bool:
    """Whether the send into pipeline `stage` leaves a node. A stage is `width` devices (tp, or tp * ep with expert
    parallelism), ``stage * width .. stage * width + width - 1``, stages packed into nodes in order; rank i of the
    previous stage sends to rank i of this one."""
    if per_node is None:
        return False
    return any(((stage - 1) * width + i) // per_node != (stage * width + i) // per_node for i in range(width))


def send_s(nbytes: int, target, stage: int, width: int) -> float:
    """The send of `nbytes` into pipeline `stage` (of `width` devices): one step of the link's latency + bytes /
    bandwidth, on the scale-out network when the sender and the receiver sit in different nodes (`crosses_nodes`),
    else on the scale-up link."""
    link = "scale_out" if crosses_nodes(stage, width, target.devices_per_node) else "scale_up"
    gbps, latency_us = getattr(target, f"{link}_gbps"), getattr(target, f"{link}_latency_us")
    if gbps is None or latency_us is None:
        raise UsageError(f"target {target.name} has no {link}_gbps / {link}_latency_us for the pipeline's send "
                         f"into stage {stage} ({width} devices a stage, {target.devices_per_node} a node); set them "
                         "with --set")
    return latency_us * 1e-6 + nbytes / (gbps * 1e9)


def pipeline_step_s(stage_s: list[float], send_s: list[float], micro_batches: int) -> float:
    """Wall time of one step of a pipeline of ``M = len(stage_s)`` stages that `micro_batches` (u) micro-batches
    cross in order, each stage taking ``stage_s[s]`` per micro-batch and each send into a stage ``send_s``
    (one per boundary; a send does not hold either stage's devices)::

        step_s = sum(stage_s) + (u - 1) * max(stage_s) + sum(send_s)

    The first micro-batch crosses every stage and every send (the fill); the others leave the last stage one
    slowest-stage time apart (the slowest stage is busy for all u of them). This is the exact makespan of u
    identical jobs through M stages in order; with balanced stages (every ``stage_s`` equal to t) it is GPipe's
    ``(u + M - 1) * t + sends``, of which each device idles ``(M - 1) / (u + M - 1)`` (the bubble), and it is
    never above that formula with ``t = max(stage_s)``.
    """
    return sum(stage_s) + (micro_batches - 1) * max(stage_s) + sum(send_s)


def steady_decode_s(stage_s: list[float], send_s: list[float], micro_batches: int) -> float:
    """The time between two tokens of a micro-batch when `micro_batches` (u) micro-batches circulate through the
    stages without a barrier (each decode step of a micro-batch needs its previous token)::

        period_s = max(sum(stage_s) + sum(send_s), u * max(stage_s))

    The period of a cyclic pipeline is the largest of its cycles' time over the jobs each cycle holds (a marked
    graph's cycle time): a micro-batch's trip round every stage and send holds u micro-batches, so each token comes
    at least ``sum + sends`` after the last; every stage is a cycle holding one micro-batch, so the slowest serves
    the u of them in ``u * max(stage_s)``. With u = 1 it is the stages in turn, as `pipeline_step_s`.
    """
    return max(sum(stage_s) + sum(send_s), micro_batches * max(stage_s))


def steady_bubble_fraction(stage_s: list[float], period_s: float, micro_batches: int) -> float:
    """The stages' mean idle share of a steady decode period: stage s is busy ``u * stage_s[s]`` of it."""
    return 1.0 - micro_batches * sum(stage_s) / (len(stage_s) * period_s)


def bubble_fraction(pp: int, micro_batches: int) -> float:
    """The fill-drain bubble of a step: ``(M - 1) / (u + M - 1)`` of it each device idles (balanced stages)."""
    return (pp - 1) / (micro_batches + pp - 1)
