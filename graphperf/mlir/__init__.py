"""The MLIR level: lower a model through torch-mlir to linalg-on-tensors and cost every linalg op.

    graphperf analyze MODEL --level mlir [--target NAME] [--format table|json|csv|html]
    graphperf mlir MODEL [-o out.mlir] [--stage torch|linalg] [--target NAME]

Pipeline (one module per step): `lower` (torch.export program via torch-mlir's FX importer, or an
ONNX file via its ONNX importer; locations name the graph node of every op) -> `convert` (one
graphperf `Node` per op of the main function, with the iteration domain, per-operand footprints
and body counts of each linalg op; `body` counts one iteration) -> the graph-level pipeline
(canonicalize, count with the single `linalg` rule of graphperf/rules/linalg.py, project, report:
the same report format) -> `annotate` (figures back onto the MLIR ops) and `tiling` (the best
tile of every contraction, with the what-if tile model). `analyze` ties them together.

Counting at this level (the README conventions, applied to linalg):
- FLOPs = iteration-domain size x arithmetic ops in the body (a multiply-add is 2; compares and
  selects count 1; select(cmp(a, b), a, b) is one max/min); transcendentals (math dialect: exp,
  log, erf, tanh, rsqrt, ...) apart; casts, index arithmetic, load-address arithmetic, runtime
  checks and dead body code count nothing (graphperf/mlir/body.py).
- matrix_flops: contractions (named matmul/conv ops and generics that multiply two operands
  into a reduction).
- Bytes: each input's footprint under its indexing map (a broadcast operand is read once, at its
  own size), an output's initial value only when the body reads it and it is not a folded
  ``linalg.fill``, outputs written once; ``tensor.extract`` loads read the gathered elements.
- Ops that are not linalg are classified: tensor.empty (no node), constants (weights),
  expand/collapse_shape (free views), extract_slice / concat / pad / insert_slice (data
  movement), linalg.fill (a memset write, or free when it only initialises an accumulator),
  single-input copies (transpose: a layout op, a view after canonicalization as at the graph
  level; broadcast: expand; dtype change: cast).
- Ops torch-mlir does not lower to linalg (``tm_tensor.attention`` for causal or grouped-query
  attention, ``tm_tensor.sort``/``scatter`` for topk and scatter, any
  ``torch.*`` op left after a conversion failure) are named in ``report.model["warnings"]`` and
  their graph node is costed with the graph-level rules.

Differences from the graph level (pinned exactly by tests/mlir/test_acceptance.py on every
models/ workload, tiny config, every phase). matrix_flops agree exactly; every other difference is a
real difference in what the lowering computes:
- Attention: none. PyTorch's SDPA math decomposition (q and k both scaled, `_safe_softmax` checks)
  is kept out (graphperf/mlir/lower.py `_KEEP`); torch-mlir lowers plain attention to linalg with the
  graph-level rule's count (scale per score, softmax, two batch matmuls) and causal or grouped-query
  attention to ``tm_tensor.attention``, its fused attention op, costed by the graph-level rule (so
  causal attention is counted as half, the README convention) and named in the warnings.
- layer_norm: torch-mlir computes the mean and x - mean twice (for the variance and for the
  output): +2 per element, +1 divide per row.
- Convolution bias: the accumulator starts from the bias (a broadcast copy): -1 per output.
- batch_norm after a convolution: folded into the convolution before lowering for models/ workloads
  (torch.fx's conv+bn fusion, graphperf/mlir/analyze.py), as the graph level folds it; a .pt2 or ONNX
  file keeps torch-mlir's batch_norm: 4 per element + 2 per channel (and one sqrt per channel).
- avg_pool over one element and topk over an axis of length 1 fold away.
At tiny configs total FLOPs agree within 0.26% on every workload but resnet50 (-0.9%: conv biases
start the accumulator); see benchmarks/RESULTS_MLIR.md. Through ONNX (the exporter
decomposes attention before either level sees it) matrix_flops agree exactly and totals within 2%
(0.2% measured; tests/mlir/test_onnx_acceptance.py). Bytes differ far more: the graph level counts
attention, normalisations and activations as one fused kernel each, the linalg graph materialises
every intermediate of a decomposed op; and every linalg op pays a kernel launch in the projection.
The annotated MLIR parses back in `graphperf.mlir.lower.parsing_context()` (torch and TMTensor
dialects) and with torch-mlir-opt.

Weights: torch-mlir imports parameters as constants, so the model is built with real weights;
configs over 1 GiB of weights (full-size LLMs) are refused with one UsageError line.
"""

from .analyze import MAX_WEIGHT_BYTES, MlirCapture, analyze_mlir, load_mlir, rollup_by_graph_node

__all__ = ["MlirCapture", "load_mlir", "analyze_mlir", "rollup_by_graph_node", "MAX_WEIGHT_BYTES"]
