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
- Ops torch-mlir does not lower to linalg (``tm_tensor.sort``/``scatter`` for topk and scatter, any
  ``torch.*`` op left after a conversion failure) are named in ``report.model["warnings"]`` and
  their graph node is costed with the graph-level rules.

Differences from the graph level (pinned exactly by tests/mlir/test_acceptance.py on every
models/ workload, tiny config, every phase). matrix_flops agree exactly once causal attention is
counted in full; every other difference is a real difference in what the lowering computes:
- Causal attention: the lowering computes the full score matrix and masks it; the graph level
  counts causal attention as exactly half (README convention). Compare with is_causal=False.
- Attention (torch's SDPA math decomposition): the scale multiplies q and k (k expanded to the
  query heads) instead of each score, and ``_safe_softmax`` adds a compare, an `and` reduction
  and a select per score: +2n + numel(q) + Hq*S*E for n = B*Hq*L*S scores; a causal mask adds
  a select per score (+n) and is built once per L x S shape (+4*L*S; CSE shares it between layers).
- layer_norm: torch-mlir computes the mean and x - mean twice (for the variance and for the
  output): +2 per element, +1 divide per row.
- Convolution bias: the accumulator starts from the bias (a broadcast copy): -1 per output.
- batch_norm after a convolution: folded into the convolution at the graph level (canonicalize),
  kept by torch-mlir: 4 per element + 2 per channel (and one sqrt per channel).
- avg_pool over one element and topk over an axis of length 1 fold away.
At tiny configs these make MLIR FLOPs 0.5% (vit-b16) to 10% (llama3-8b decode: the k scaling of
one query over the whole cache) above the graph level with causal attention counted in full;
at full size (resnet50, bert-base, vit-b16) within 0.4% (benchmarks/RESULTS_MLIR.md). Through ONNX
(the exporter decomposes attention before either level sees it) matrix_flops agree exactly and
totals within 2% (0.2% measured; tests/mlir/test_onnx_acceptance.py). Bytes differ far more:
the graph level counts attention, normalisations and activations as one fused kernel each, the
linalg graph materialises every intermediate (scores, exp, sums) as unfused ops do; and every
linalg op pays a kernel launch in the projection.

Weights: torch-mlir imports parameters as constants, so the model is built with real weights;
configs over 1 GiB of weights (full-size LLMs) are refused with one UsageError line.
"""

from .analyze import MAX_WEIGHT_BYTES, MlirCapture, analyze_mlir, load_mlir, rollup_by_graph_node

__all__ = ["MlirCapture", "load_mlir", "analyze_mlir", "rollup_by_graph_node", "MAX_WEIGHT_BYTES"]
