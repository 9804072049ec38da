"""The attention and rotary-embedding contrib ops (``com.microsoft``) and ONNX 23's RotaryEmbedding, mapped onto
canonical ops. Registered into the `onnx_mapping` registry on import (`onnx_ops` imports this module).

Decisions:
- Attention ops become the attention canonical op on [B, N, S, H] views of their inputs (free, as the layout
  convention makes every frontend's layout ops), after the input projection (Attention, QAttention), the
  bias adds (MultiHeadAttention) and rotary embedding (GroupQueryAttention with do_rotary); a past KV cache
  is concatenated into the present one (as opset 23 Attention). GroupQueryAttention is causal; a sliding
  window (local_window_size) is counted as full causal attention, an upper bound. A KV buffer shared between
  past and present (present as long as past) is attended in full, an upper bound of the run-time
  total_sequence_length, and updated in place (present is a view of past).
- Options whose work is a run-time value keep the node unknown, with the reason: Attention with do_rotary
  (positions from past_sequence_length) and the decoder attentions with past_present_share_buffer.
- Rotary embeddings are the rotary canonical op (3 flops per rotated element, the table rows the position ids
  select); GemmaRotaryEmbedding, whose rotated halves are explicit inputs, is cos, sin, and their products.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .onnx_mapping import (KeepUnknown, OnnxNode, Part, register, register_contrib, temp_value, trim_inputs,
                           typed_value, view_part)

__all__: list[str] = []


# --- rotary embedding ----------------------------------------------------------------------------------

def _rotary(x: int, position_ids: Optional[int], cos: int, sin: int):
    def map_rotary(n: OnnxNode) -> Part:
        t = typed_value(n, n.input(x), "input")
        heads = int(n.attrs.get("num_heads", 0) or 0)
        if t.rank == 3 and heads == 0:  # heads from the cache's width (rotary over whole heads)
            half = typed_value(n, n.input(cos), "cos_cache").shape[-1]
            heads = t.shape[-1] // (2 * half) if half else 0
        ids = n.input(position_ids) if position_ids is not None else None
        return Part("rotary", trim_inputs((n.input(x), n.input(cos), n.input(sin), ids)), n.outputs,
                    {"num_heads": heads or None, "rotary_dim": int(n.attrs.get("rotary_embedding_dim", 0) or 0)})
    return map_rotary


register_contrib(("RotaryEmbedding", "MRotaryEmbedding"), ("rotary",))(_rotary(0, 1, 2, 3))  # (input, position_ids, cos, sin)
register("RotaryEmbedding", ("rotary",))(_rotary(0, 3, 1, 2))  # ONNX 23: (X, cos_cache, sin_cache, position_ids)


@register_contrib("GemmaRotaryEmbedding", ("cos", "sin", "mul", "add"))
def _gemma_rotary(n: OnnxNode) -> list[Part]:
    """(emb, q, q_rot, k, k_rot) -> q * cos(emb) + q_rot * sin(emb), and the same for k."""
    emb = typed_value(n, n.input(0), "emb")
    c, s = n.temp("cos", emb), n.temp("sin", emb)
    parts = [Part("cos", (n.input(0),), (c,), suffix="cos"), Part("sin", (n.input(0),), (s,), suffix="sin")]
    for (x, rot), out, tag in zip(((1, 2), (3, 4)), n.outputs, ("q", "k")):
        if not out:
            continue
        xt = typed_value(n, n.input(x), tag)
        a, b = n.temp(f"{tag}_cos", xt), n.temp(f"{tag}_sin", xt)
        parts += [Part("mul", (n.input(x), c), (a,), suffix=f"{tag}_cos"),
                  Part("mul", (n.input(rot), s), (b,), suffix=f"{tag}_sin"),
                  Part("add", (a, b), (out,), suffix="" if tag == "q" else tag)]
    return parts


# --- attention -----------------------------------------------------------------------------------------

def _bnsh(n: OnnxNode, src: str, tag: str, batch: int, heads: int, seq: int, head: int, dtype: str) -> tuple[Part, str]:
    return view_part(n, src, tag, (batch, heads, seq, head), dtype)


def _attend(n: OnnxNode, q: str, k: str, v: str, mask: Optional[str], causal: bool) -> Part:
    outs = n.outputs + ("", "", "", "")
    qk = outs[3] if n.op_type in ("MultiHeadAttention", "GroupQueryAttention", "DecoderMaskedMultiHeadAttention") \
        else ""
    return Part("attention", trim_inputs((q, k, v, mask)), tuple(o for o in (outs[0], qk) if o), {"is_causal": causal})


def _cache(n: OnnxNode, past: Optional[str], new: str, present: str, tag: str) -> tuple[list[Part], str]:
    """The K or V the attention reads: concat(past, new) into present (or a temporary), or new alone."""
    if past is None:
        if present:
            return [Part("concat", (new,), (present,), {"axis": 2}, suffix=f"present_{tag}")], new
        return [], new
    p, t = typed_value(n, past, f"past_{tag}"), typed_value(n, new, tag)
    if present and n.type(present) is not None and n.type(present).shape == p.shape:  # a shared (static) buffer
        return [Part("view", (past,), (present,), suffix=f"present_{tag}")], present
    shape = (*p.shape[:2], p.shape[2] + t.shape[2], p.shape[3])
    out = present or temp_value(n, f"present_{tag}", shape, p.dtype)
    return [Part("concat", (past, new), (out,), {"axis": 2}, suffix=f"present_{tag}")], out


def _multi_head(n: OnnxNode, query: int, key: int, value: int, bias: Optional[int], masks: Sequence[int],
                past_key: int, past_value: int) -> list[Part]:
    q_t = typed_value(n, n.input(query), "query")
    heads = int(n.attrs["num_heads"])
    causal = bool(n.attrs.get("unidirectional", 0))
    outs = n.outputs + ("", "", "")
    mask = next((n.input(i) for i in masks if n.input(i) is not None), None)
    b, s = q_t.shape[0], q_t.shape[1]
    parts: list[Part] = []
    k_name, v_name = n.input(key), n.input(value)
    bias_name = n.input(bias) if bias is not None else None
    if k_name is None and q_t.rank == 5:  # packed QKV [B, S, N, 3, H]
        h = q_t.shape[-1]
        src = n.input(query)
        if bias_name is not None:
            src = n.temp("qkv_bias", q_t)
            parts.append(Part("add", (n.input(query), bias_name), (src,), suffix="bias"))
        qv, q = _bnsh(n, src, "q", b, heads, s, h, q_t.dtype)
        kv, k = _bnsh(n, src, "k", b, heads, s, h, q_t.dtype)
        vv, v = _bnsh(n, src, "v", b, heads, s, h, q_t.dtype)
        parts += [qv, kv, vv]
    else:
        k_t = typed_value(n, k_name, "key")
        hq = q_t.shape[-1] // heads
        biased = {}
        if bias_name is not None:  # bias [Dq + Dk + Dv]: one add per projection that has a 3-D input
            for tag, name, t in (("q", n.input(query), q_t), ("k", k_name, k_t), ("v", v_name, n.type(v_name or ""))):
                if name is None or t is None or t.rank != 3:
                    continue
                bview, bpart = view_part(n, bias_name, f"bias_{tag}", (t.shape[-1],), t.dtype)
                added = n.temp(f"{tag}_bias", t)
                parts += [bview, Part("add", (name, bpart), (added,), suffix=f"bias_{tag}")]
                biased[tag] = added
        qv, q = _bnsh(n, biased.get("q", n.input(query)), "q", b, heads, s, hq, q_t.dtype)
        parts.append(qv)
        if k_t.rank == 5:  # packed KV [B, L, N, 2, H]
            length, h = k_t.shape[1], k_t.shape[-1]
            kv_, k = _bnsh(n, k_name, "k", b, heads, length, h, k_t.dtype)
            vv, v = _bnsh(n, k_name, "v", b, heads, length, h, k_t.dtype)
            parts += [kv_, vv]
        elif k_t.rank == 4:  # BNSH, already projected (cross attention)
            k, v = k_name, v_name
        else:
            v_t = typed_value(n, v_name, "value")
            kv_, k = _bnsh(n, biased.get("k", k_name), "k", b, heads, k_t.shape[1], k_t.shape[-1] // heads, k_t.dtype)
            vv, v = _bnsh(n, biased.get("v", v_name), "v", b, heads, v_t.shape[1], v_t.shape[-1] // heads, v_t.dtype)
            parts += [kv_, vv]
    k_parts, k = _cache(n, n.input(past_key), k, outs[1], "k")
    v_parts, v = _cache(n, n.input(past_value), v, outs[2], "v")
    return [*parts, *k_parts, *v_parts, _attend(n, q, k, v, mask, causal)]


def _shared_buffer(n: OnnxNode) -> None:
    if int(n.attrs.get("past_present_share_buffer", 0)):
        raise KeepUnknown("past_present_share_buffer: the attended length is the run-time past_sequence_length")


@register_contrib("MultiHeadAttention", ("add", "view", "concat", "attention"))
def _mha(n: OnnxNode) -> list[Part]:
    # (query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value, ...)
    return _multi_head(n, 0, 1, 2, 3, (5, 4), 6, 7)


@register_contrib("DecoderMaskedMultiHeadAttention", ("add", "view", "concat", "attention"))
def _decoder_masked_mha(n: OnnxNode) -> list[Part]:
    # (query, key, value, mask_index, attention_bias, past_key, past_value, past_sequence_length, beam_width,
    #  cache_indirection, bias)
    _shared_buffer(n)
    return _multi_head(n, 0, 1, 2, 10, (4, 3), 5, 6)


def _packed_qkv(x: int, w: int, bias: int, mask: int, past: int, attention_bias: Optional[int]):
    """Attention with one input projection: (input, weights [D, Dq+Dk+Dv], bias, mask_index, past, ...)."""
    def map_attention(n: OnnxNode) -> list[Part]:
        _shared_buffer(n)
        if int(n.attrs.get("do_rotary", 0)):
            raise KeepUnknown("do_rotary: positions from the run-time past_sequence_length")
        x_t, w_t = typed_value(n, n.input(x), "input"), typed_value(n, n.input(w), "weights")
        heads = int(n.attrs["num_heads"])
        sizes = tuple(int(v) for v in n.attrs.get("qkv_hidden_sizes") or ()) or (w_t.shape[-1] // 3,) * 3
        b, s, dtype = x_t.shape[0], x_t.shape[1], x_t.dtype if x_t.dtype.startswith("float") else "float32"
        qkv = temp_value(n, "qkv", (b, s, sum(sizes)), dtype)
        parts = [Part("matmul", trim_inputs((n.input(x), n.input(w), n.input(bias))), (qkv,), suffix="qkv")]
        heads4 = []
        for tag, size in zip("qkv", sizes):
            view, name = _bnsh(n, qkv, tag, b, heads, s, size // heads, dtype)
            parts.append(view)
            heads4.append(name)
        q, k, v = heads4
        outs = n.outputs + ("", "")
        present, past_name = outs[1], n.input(past)
        if past_name is not None:
            p = typed_value(n, past_name, "past")  # [2, B, N, P, H]
            total = p.shape[3] + s
            present = present or temp_value(n, "present", (2, b, heads, total, p.shape[-1]), p.dtype)
            parts.append(Part("concat", (past_name, k, v), (present,), {"axis": 3}, suffix="present"))
            kview, k = _bnsh(n, present, "k_all", b, heads, total, sizes[1] // heads, p.dtype)
            vview, v = _bnsh(n, present, "v_all", b, heads, total, sizes[2] // heads, p.dtype)
            parts += [kview, vview]
        elif present:
            parts.append(Part("concat", (k, v), (present,), {"axis": 0}, suffix="present"))
        mask_name = next((n.input(i) for i in (attention_bias, mask) if i is not None and n.input(i) is not None),
                         None)
        return [*parts, _attend(n, q, k, v, mask_name, bool(n.attrs.get("unidirectional", 0)))]
    return map_attention


register_contrib("Attention", ("matmul", "view", "concat", "attention"))(_packed_qkv(0, 1, 2, 3, 4, 5))
# (input, weight, bias, input_scale, weight_scale, mask_index, input_zero_point, weight_zero_point, past)
register_contrib("QAttention", ("matmul", "view", "concat", "attention"))(_packed_qkv(0, 1, 2, 5, 8, None))
# (input, weights, bias, mask_index, past, attention_bias, past_sequence_length, beam_width, cache_indirection)
register_contrib("DecoderMaskedSelfAttention", ("matmul", "view", "concat", "attention"))(_packed_qkv(0, 1, 2, 3, 4, 5))


@register_contrib("GroupQueryAttention", ("view", "rotary", "concat", "attention"))
def _gqa(n: OnnxNode) -> list[Part]:
    """(query, key, value, past_key, past_value, seqlens_k, total_sequence_length, cos_cache, sin_cache,
    position_ids, attention_bias, ...) -> (output, present_key, present_value, output_qk); always causal."""
    q_t = typed_value(n, n.input(0), "query")
    heads, kv_heads = int(n.attrs["num_heads"]), int(n.attrs["kv_num_heads"])
    b, s, dtype = q_t.shape[0], q_t.shape[1], q_t.dtype
    outs = n.outputs + ("", "", "", "")
    if n.input(1) is None:  # packed QKV [B, S, (N + 2 Nkv) * H]
        h = q_t.shape[-1] // (heads + 2 * kv_heads)
        srcs = (n.input(0),) * 3
    else:
        h = q_t.shape[-1] // heads
        srcs = (n.input(0), n.input(1), n.input(2))
    parts, heads4 = [], []
    for tag, src, count in zip("qkv", srcs, (heads, kv_heads, kv_heads)):
        view, name = _bnsh(n, src, tag, b, count, s, h, dtype)
        parts.append(view)
        heads4.append(name)
    q, k, v = heads4
    if int(n.attrs.get("do_rotary", 0)):
        cos, sin, ids = n.input(7), n.input(8), n.input(9)
        if ids is None:  # positions past..past+S-1: the S rows of the tables a step reads
            half = typed_value(n, cos, "cos_cache").shape[-1]
            cview, cos = view_part(n, cos, "cos_rows", (s, half), n.type(cos).dtype)
            sview, sin = view_part(n, sin, "sin_rows", (s, half), n.type(sin).dtype)
            parts += [cview, sview]
        for tag, name, count in (("q", q, heads), ("k", k, kv_heads)):
            rotated = n.temp(f"{tag}_rotary", n.type(name))
            parts.append(Part("rotary", trim_inputs((name, cos, sin, ids)), (rotated,), {}, suffix=f"rotary_{tag}"))
            if tag == "q":
                q = rotated
            else:
                k = rotated
    k_parts, k = _cache(n, n.input(3), k, outs[1], "k")
    v_parts, v = _cache(n, n.input(4), v, outs[2], "v")
    return [*parts, *k_parts, *v_parts, _attend(n, q, k, v, n.input(10), True)]
