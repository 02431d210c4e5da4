"""Randomly initialised Hugging Face PhiForCausalLM models saved to disk: the reference side of
the parity tests (nothing is downloaded)."""

from __future__ import annotations

import os

import torch
import transformers

# Three shapes: odd vocab sizes, several head counts and head sizes, one with grouped-query attention.
SHAPES = {
    "h4_v101": dict(vocab_size=101, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                    num_attention_heads=4),
    "h6_v257_rot04": dict(vocab_size=257, hidden_size=96, intermediate_size=200, num_hidden_layers=3,
                          num_attention_heads=6, partial_rotary_factor=0.375, rope_theta=5000.0),
    "h2_v503_d64": dict(vocab_size=503, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                        num_attention_heads=2),
    "gqa_h4_kv2": dict(vocab_size=131, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2),
}


def hf_model(shape: str, seed: int = 0, initializer_range: float = 0.1) -> transformers.PhiForCausalLM:
    """A random PhiForCausalLM in float32, eval mode. A wide init gives peaked logits, so greedy
    decoding has no near-ties that float rounding could flip."""
    torch.manual_seed(seed)
    config = transformers.PhiConfig(**SHAPES[shape], initializer_range=initializer_range,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0)
    model = transformers.PhiForCausalLM(config).eval()
    with torch.no_grad():  # HF initialises biases and LayerNorms to constants; randomise them too
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def save_hf_model(model: transformers.PhiForCausalLM, directory: str, **kwargs) -> str:
    os.makedirs(directory, exist_ok=True)
    model.save_pretrained(directory, **kwargs)
    return directory


def hf_logits(model: transformers.PhiForCausalLM, ids, **kwargs):
    with torch.no_grad():
        return model(torch.as_tensor(ids), **kwargs).logits.float().numpy()
