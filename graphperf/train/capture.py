"""One training step of a graphperf.models workload as two graphs, forward (with the loss) and backward, captured on
fake tensors: no weight is materialised, so full-size configs (gpt2, llama3-8b) capture on a CPU in seconds.

How: the workload is built on the meta device (`graphperf.models.build`), its parameters and buffers are replaced
by fake tensors (``torch._subclasses.FakeTensorMode``), and aot_autograd traces the step
``loss = cross_entropy(model(*inputs), labels)`` through ``torch.func.functional_call`` with fake inputs; the
backward is traced by calling ``backward()`` on the fake loss. The joint graph is split by
``min_cut_rematerialization_partition``, the partitioner torch.compile's default (inductor) training uses: it
saves every matmul and attention output for the backward and may recompute cheap elementwise ops there (the
default partitioner recomputes the CPU flash-attention forward in the backward, which eager autograd never does).
Both ATen graphs go through the torch.compile frontend's conversion (`graphperf.capture.fx_graph.capture_fx`).

Guarantees:

- The forward graph includes the loss: ``cross_entropy`` in float32 of the model's output (``[..., classes]``)
  against int64 labels of the output's leading shape (for an LM, next-token labels of every position; for an
  encoder such as bert-base, whose first output is its last hidden state, the loss over the hidden dim stands in for
  a task head; of a model with several outputs the first is scored). The backward starts from the loss's gradient
  (``tangents_1``). A parameter the loss does not reach (bert-base's pooler) gets no gradient: it is neither
  all-reduced nor updated.
- `TrainingStep.parameters` lists every trainable parameter once (tied weights once), in
  ``module.named_parameters()`` order, with its gradient's value in the backward graph (``gradient``; None when
  the loss does not depend on it): the backward graph's outputs, in that order. ``backward.meta["gradients"]``
  carries the same list for passes (passes/data_parallel.py).
- ``forward.meta["parameters"]`` and ``backward.meta["parameters"]`` map each trainable parameter's name to the
  values of that graph which are the parameter or a view of it (the forward's ``primals_i`` placeholder; in the
  backward, that placeholder and the forward's views of it saved for the backward, such as ``t(w)``), for passes
  that need to know where a parameter is read (passes/fully_shard.py).
- Gradients have their parameter's dtype (training in the workload's dtype; no fp32 master weights).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

from graphperf.errors import AnalysisError, UsageError
from graphperf.ir import Graph

__all__ = ["Parameter", "TrainingStep", "capture_training_step", "LOSS"]

#: What the forward graph ends with (README, Training).
LOSS = "cross_entropy(model(*inputs).float(), labels) (mean over positions), included in the forward graph"


@dataclass(frozen=True)
class Parameter:
    """One trainable parameter: its name, elements, dtype, bytes and its gradient's value in the backward graph."""

    name: str
    numel: int
    dtype: str
    nbytes: int
    gradient: Optional[str]


@dataclass(frozen=True)
class TrainingStep:
    """The forward graph (ending with the loss), the backward graph, the parameters, the workload's description and
    its shape (`seq` None for a vision model)."""

    forward: Graph
    backward: Graph
    parameters: tuple[Parameter, ...]
    description: str
    batch: int
    seq: Optional[int]
    loss: str = LOSS

    @property
    def parameter_count(self) -> int:
        return sum(p.numel for p in self.parameters)

    @property
    def gradient_bytes(self) -> int:
        """Bytes of every parameter's gradient (parameters the loss does not reach have none)."""
        return sum(p.nbytes for p in self.parameters if p.gradient is not None)


@functools.lru_cache(maxsize=4)
def capture_training_step(model: str, config: str = "full", batch: int = 1, seq: Optional[int] = None,
                          dtype: Optional[str] = None) -> TrainingStep:
    """Capture one training step of `model` (a graphperf.models name or config.json) at `batch` x `seq` on fake
    tensors; the last few captures are kept (callers never mutate the graphs).

    Example
    -------
    >>> from graphperf.train.capture import capture_training_step
    >>> step = capture_training_step("gpt2", "tiny", batch=2, seq=16, dtype="float32")
    >>> step.parameter_count, step.backward.meta["gradients"][0]["parameter"]
    (116480, 'wte.weight')
    """
    import torch
    import torch.nn.functional as F
    from torch._functorch.aot_autograd import aot_function, make_boxed_func
    from torch._functorch.partitioners import min_cut_rematerialization_partition
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.func import functional_call

    from graphperf.capture.fx_graph import capture_fx
    from graphperf.models import build, get_model

    try:
        spec = get_model(model)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    phase = "prefill" if "prefill" in spec.phases else spec.phases[0]
    try:
        w = build(spec, config=config, phase=phase, batch=batch, seq=seq, dtype=dtype, device="meta")
    except ValueError as exc:
        raise UsageError(f"{model}: {exc}") from None
    module = w.module.train()
    mode = FakeTensorMode()

    def fake(t, grad: bool = False):
        with mode:
            out = torch.empty(t.shape, dtype=t.dtype, device="cpu")
        return out.requires_grad_(grad)

    params = {n: fake(p, True) for n, p in module.named_parameters() if p.requires_grad}
    buffers = {n: fake(b) for n, b in module.named_buffers()}
    inputs = tuple(fake(a) if isinstance(a, torch.Tensor) else a for a in w.args)

    def scored(params, buffers, inputs):
        out = functional_call(module, {**params, **buffers}, inputs)
        return out[0] if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor) else out

    def step(params, buffers, inputs, labels):
        return F.cross_entropy(scored(params, buffers, inputs).flatten(0, -2).float(), labels.flatten())

    with mode:
        try:
            out = scored(params, buffers, inputs)
        except ValueError as exc:  # the model refuses these inputs in training (BatchNorm at batch 1): the user's
            raise UsageError(f"{w.description}: the training step's forward refuses these inputs: "
                             f"{_first_line(exc)}") from None
        except Exception as exc:
            raise AnalysisError(f"{w.description}: the training step's forward could not run on fake tensors: "
                                f"{_first_line(exc)}") from exc
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            raise AnalysisError(f"{w.description}: the training step needs one output of shape [..., classes], "
                                f"got {type(out).__name__}")
        labels = torch.zeros(out.shape[:-1], dtype=torch.long)
    graphs: dict[str, torch.fx.GraphModule] = {}

    def keep(kind: str):
        def compiler(gm, _inputs):
            graphs[kind] = gm
            return make_boxed_func(gm.forward)
        return compiler

    try:
        traced = aot_function(step, fw_compiler=keep("forward"), bw_compiler=keep("backward"),
                              partition_fn=min_cut_rematerialization_partition)
        traced(params, buffers, inputs, labels).backward()
    except Exception as exc:  # aot_autograd's errors are long; keep the first line
        raise AnalysisError(f"{w.description}: the training step could not be traced: {_first_line(exc)}") from exc
    fw, bw = graphs["forward"], graphs["backward"]
    names = list(params)
    fw_inputs = [n.name for n in fw.graph.nodes if n.op == "placeholder"]
    weights = set(fw_inputs[:len(names) + len(buffers)])
    fw_params = set(fw_inputs[:len(names)])
    bw_inputs = {n.name for n in bw.graph.nodes if n.op == "placeholder"}
    description = w.description.replace(f" {phase} ", " ", 1)
    label = f"{description} training step"
    forward = capture_fx(fw, name=f"{label} forward", weights=weights, parameters=fw_params,
                         meta={"training": "forward", "loss": LOSS})
    backward = capture_fx(bw, name=f"{label} backward", weights=weights & bw_inputs, parameters=fw_params & bw_inputs,
                          meta={"training": "backward"})
    out_args = list(next(n for n in bw.graph.nodes if n.op == "output").args[0])
    present = [a for a in out_args if a is not None]
    if len(present) != len(backward.outputs):
        raise AnalysisError(f"{label}: {len(present)} gradients traced but {len(backward.outputs)} captured")
    by_arg = dict(zip((a.name for a in present), backward.outputs))
    parameters = []
    for i, name in enumerate(names):
        p = params[name]
        arg = out_args[i] if i < len(out_args) else None
        parameters.append(Parameter(name, p.numel(), backward.values[by_arg[arg.name]].type.dtype
                                    if arg is not None else str(p.dtype).removeprefix("torch."),
                                    p.numel() * p.element_size(), None if arg is None else by_arg[arg.name]))
    forward.meta["parameters"], backward.meta["parameters"] = _parameter_values(forward, backward, fw_inputs, names)
    backward.meta["gradients"] = [{"parameter": p.name, "value": p.gradient} for p in parameters
                                  if p.gradient is not None]
    return TrainingStep(forward, backward, tuple(parameters), description, w.batch, w.seq)


def _first_line(exc: BaseException) -> str:
    """An exception's first line (torch's messages run over many), or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parameter_values(forward: Graph, backward: Graph, fw_inputs: list, names: list) -> tuple[dict, dict]:
    """{parameter: values} of the forward (its placeholder) and of the backward (the placeholder if the backward
    reads it, and the forward's views of it that are backward inputs)."""
    from graphperf.rules.registry import is_free

    placeholder = dict(zip(names, fw_inputs))
    owner = {v: n for n, v in placeholder.items()}
    for node in forward.nodes:  # views of a parameter (t(w), view(w)) carry its owner
        if is_free(node.op) and node.inputs and node.inputs[0] in owner:
            for out in node.outputs:
                owner[out] = owner[node.inputs[0]]
    bw_inputs = {n for n, v in backward.values.items() if v.kind in ("input", "weight") and v.producer is None}
    fw_map = {n: [v] for n, v in placeholder.items()}
    bw_map: dict[str, list] = {n: [] for n in names}
    for value, name in owner.items():
        if value in bw_inputs:
            bw_map[name].append(value)
    return fw_map, bw_map
