"""The Hugging Face corpus: tiny `transformers` models of many architectures, built from explicit config
classes with random weights on the CPU (no hub access, no weights read, no network).

Guarantees:
- `build(name)` returns ``(module, example_inputs)``: an ``nn.Module`` in eval mode and a dict of
  keyword tensors, the same objects on every call within a process (cached), so an export made from them
  can be cached too. Pass them as ``torch.export.export(module, (), example_inputs)``,
  ``torch.onnx.export(module, (), kwargs=example_inputs, dynamo=True)`` or
  ``graphperf.capture(module, example_inputs)``.
- `exported(name)` is ``torch.export.export(module, (), example_inputs, strict=False)``, made once per
  process (graphperf's own capture path exports the same way; ``torch.onnx.export`` accepts it too).
- Weights are seeded (``torch.manual_seed(0)`` before each build), so two processes build the same model.
- `ARCHITECTURES` lists every model with its kind (decoder, moe, encoder, encoder-decoder, vision,
  convnet, speech) and the transformers class it builds; `names()` is its keys in order.
- Sizes are tiny (hidden 32-64, two layers, sequences of 16) so the whole corpus exports in seconds.

Each builder sets ``use_cache=False`` (no KV cache object among the outputs) and leaves the default
attention implementation (SDPA where the class supports it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["Arch", "ARCHITECTURES", "build", "exported", "names"]

BATCH, SEQ, VOCAB = 2, 16, 256


@dataclass(frozen=True)
class Arch:
    """One corpus entry: `kind` groups it in the README table; `make` returns (module, example_inputs)."""

    name: str
    kind: str
    hf_class: str
    make: Callable[[], tuple[torch.nn.Module, dict[str, torch.Tensor]]]


def _ids(batch: int = BATCH, seq: int = SEQ, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq))


_LLM = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64, use_cache=False)


def _causal_lm(config_cls: str, model_cls: str, **overrides):
    def make():
        import transformers as T

        config = getattr(T, config_cls)(**{**_LLM, **overrides})
        return getattr(T, model_cls)(config), {"input_ids": _ids()}

    return make


def _gpt2():
    import transformers as T

    config = T.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=VOCAB, bos_token_id=1,
                          eos_token_id=2, use_cache=False)
    return T.GPT2LMHeadModel(config), {"input_ids": _ids()}


def _gpt_neox():
    import transformers as T

    config = T.GPTNeoXConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             vocab_size=VOCAB, max_position_embeddings=64, use_cache=False)
    return T.GPTNeoXForCausalLM(config), {"input_ids": _ids()}


def _falcon():
    import transformers as T

    config = T.FalconConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=VOCAB,
                            new_decoder_architecture=False, multi_query=True, use_cache=False)
    return T.FalconForCausalLM(config), {"input_ids": _ids()}


def _opt():
    import transformers as T

    config = T.OPTConfig(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                         word_embed_proj_dim=64, vocab_size=VOCAB, max_position_embeddings=64, use_cache=False)
    return T.OPTForCausalLM(config), {"input_ids": _ids()}


def _bloom():
    import transformers as T

    config = T.BloomConfig(hidden_size=64, n_layer=2, n_head=4, vocab_size=VOCAB, use_cache=False)
    return T.BloomForCausalLM(config), {"input_ids": _ids()}


def _mixtral():
    import transformers as T

    config = T.MixtralConfig(**_LLM, num_local_experts=4, num_experts_per_tok=2)
    return T.MixtralForCausalLM(config), {"input_ids": _ids()}


def _qwen2_moe():
    import transformers as T

    config = T.Qwen2MoeConfig(**{**_LLM, "intermediate_size": 128}, moe_intermediate_size=32,
                              shared_expert_intermediate_size=64, num_experts=4, num_experts_per_tok=2,
                              decoder_sparse_step=1)
    return T.Qwen2MoeForCausalLM(config), {"input_ids": _ids()}


_ENC = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=VOCAB,
            max_position_embeddings=64)


def _encoder(config_cls: str, model_cls: str, **overrides):
    def make():
        import transformers as T

        config = getattr(T, config_cls)(**{**_ENC, **overrides})
        ids = _ids()
        return getattr(T, model_cls)(config), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    return make


def _distilbert():
    import transformers as T

    config = T.DistilBertConfig(dim=64, hidden_dim=128, n_layers=2, n_heads=4, vocab_size=VOCAB,
                                max_position_embeddings=64)
    ids = _ids()
    return T.DistilBertModel(config), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _t5():
    import transformers as T

    config = T.T5Config(d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=4,
                        vocab_size=VOCAB, use_cache=False)
    return T.T5ForConditionalGeneration(config), {"input_ids": _ids(), "decoder_input_ids": _ids(seq=8)}


def _bart():
    import transformers as T

    config = T.BartConfig(d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128, encoder_layers=2, decoder_layers=2,
                          encoder_attention_heads=4, decoder_attention_heads=4, vocab_size=VOCAB,
                          max_position_embeddings=64, use_cache=False)
    return T.BartForConditionalGeneration(config), {"input_ids": _ids(), "decoder_input_ids": _ids(seq=8)}


_IMAGE = 32


def _pixels(batch: int = 1, size: int = _IMAGE) -> torch.Tensor:
    return torch.randn(batch, 3, size, size)


def _vit():
    import transformers as T

    config = T.ViTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         image_size=_IMAGE, patch_size=8, num_labels=10)
    return T.ViTForImageClassification(config), {"pixel_values": _pixels()}


def _deit():
    import transformers as T

    config = T.DeiTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          image_size=_IMAGE, patch_size=8, num_labels=10)
    return T.DeiTForImageClassificationWithTeacher(config), {"pixel_values": _pixels()}


def _swin():
    import transformers as T

    config = T.SwinConfig(image_size=_IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 4],
                          window_size=4, num_labels=10)
    return T.SwinForImageClassification(config), {"pixel_values": _pixels()}


def _resnet():
    import transformers as T

    config = T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="bottleneck",
                            num_labels=10)
    return T.ResNetForImageClassification(config), {"pixel_values": _pixels()}


def _convnext():
    import transformers as T

    config = T.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], image_size=_IMAGE, num_labels=10)
    return T.ConvNextForImageClassification(config), {"pixel_values": _pixels()}


def _whisper():
    import transformers as T

    config = T.WhisperConfig(d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128, encoder_layers=2,
                             decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                             num_mel_bins=16, max_source_positions=16, max_target_positions=32, vocab_size=VOCAB,
                             pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                             begin_suppress_tokens=None, suppress_tokens=None, use_cache=False)
    return T.WhisperForConditionalGeneration(config), {
        "input_features": torch.randn(1, 16, 32), "decoder_input_ids": _ids(batch=1, seq=8)}


def _wav2vec2():
    import transformers as T

    config = T.Wav2Vec2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
                              num_conv_pos_embedding_groups=4, vocab_size=32)
    return T.Wav2Vec2ForCTC(config), {"input_values": torch.randn(1, 800)}


ARCHITECTURES: dict[str, Arch] = {a.name: a for a in (
    # decoder LLMs
    Arch("llama", "decoder", "LlamaForCausalLM", _causal_lm("LlamaConfig", "LlamaForCausalLM")),
    Arch("mistral", "decoder", "MistralForCausalLM", _causal_lm("MistralConfig", "MistralForCausalLM")),
    Arch("qwen2", "decoder", "Qwen2ForCausalLM", _causal_lm("Qwen2Config", "Qwen2ForCausalLM")),
    Arch("qwen3", "decoder", "Qwen3ForCausalLM", _causal_lm("Qwen3Config", "Qwen3ForCausalLM", head_dim=16)),
    Arch("phi3", "decoder", "Phi3ForCausalLM", _causal_lm("Phi3Config", "Phi3ForCausalLM", pad_token_id=0,
                                                         bos_token_id=1, eos_token_id=2)),
    Arch("gemma", "decoder", "GemmaForCausalLM", _causal_lm("GemmaConfig", "GemmaForCausalLM", head_dim=16)),
    Arch("gemma2", "decoder", "Gemma2ForCausalLM", _causal_lm("Gemma2Config", "Gemma2ForCausalLM", head_dim=16,
                                                             sliding_window=8)),
    Arch("gpt2", "decoder", "GPT2LMHeadModel", _gpt2),
    Arch("gpt-neox", "decoder", "GPTNeoXForCausalLM", _gpt_neox),
    Arch("falcon", "decoder", "FalconForCausalLM", _falcon),
    Arch("opt", "decoder", "OPTForCausalLM", _opt),
    Arch("bloom", "decoder", "BloomForCausalLM", _bloom),
    # mixture of experts
    Arch("mixtral", "moe", "MixtralForCausalLM", _mixtral),
    Arch("qwen2-moe", "moe", "Qwen2MoeForCausalLM", _qwen2_moe),
    # encoders
    Arch("bert", "encoder", "BertModel", _encoder("BertConfig", "BertModel")),
    Arch("roberta", "encoder", "RobertaModel", _encoder("RobertaConfig", "RobertaModel", pad_token_id=1)),
    Arch("distilbert", "encoder", "DistilBertModel", _distilbert),
    Arch("electra", "encoder", "ElectraModel", _encoder("ElectraConfig", "ElectraModel", embedding_size=64)),
    # encoder-decoders
    Arch("t5", "encoder-decoder", "T5ForConditionalGeneration", _t5),
    Arch("bart", "encoder-decoder", "BartForConditionalGeneration", _bart),
    # vision
    Arch("vit", "vision", "ViTForImageClassification", _vit),
    Arch("deit", "vision", "DeiTForImageClassificationWithTeacher", _deit),
    Arch("swin", "vision", "SwinForImageClassification", _swin),
    Arch("resnet", "convnet", "ResNetForImageClassification", _resnet),
    Arch("convnext", "convnet", "ConvNextForImageClassification", _convnext),
    # speech
    Arch("whisper", "speech", "WhisperForConditionalGeneration", _whisper),
    Arch("wav2vec2", "speech", "Wav2Vec2ForCTC", _wav2vec2),
)}


def names() -> list[str]:
    return list(ARCHITECTURES)


@functools.lru_cache(maxsize=None)
def build(name: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The tiny model `name` (a key of `ARCHITECTURES`) in eval mode and its example inputs (cached)."""
    arch = ARCHITECTURES[name]
    torch.manual_seed(0)
    module, inputs = arch.make()
    return module.eval(), inputs


@functools.lru_cache(maxsize=None)
def exported(name: str) -> torch.export.ExportedProgram:
    """`build(name)` through torch.export (non-strict, as graphperf captures modules), made once (cached)."""
    module, inputs = build(name)
    return torch.export.export(module, (), inputs, strict=False)
