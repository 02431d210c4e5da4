"""A checkpoint's vocabulary as Hugging Face tokenizer files, the tokenizer half of `convert to-hf`
(DESIGN.md data flow: convert -> HF PyTorch), so `transformers.AutoTokenizer.from_pretrained(OUT)`
tokenizes exactly as training did.

A SentencePiece model (ours: BPE, byte fallback, identity normalisation, no dummy prefix, whole
text as one sentence, "\\n" and "\\t" as user-defined pieces) becomes a fast `tokenizer.json`: a
`tokenizers` BPE model over the same pieces with U+2581 spelled as the space it stands for, merges
ranked by the merged piece's score (SentencePiece BPE merges the best-scoring pair first), byte
fallback, the user-defined pieces as added tokens, no normalizer and no pre-tokenizer. Spelling
spaces directly keeps a literal U+2581 in the text apart from a space (it falls back to its bytes,
as `vocabularies.CodeSentencePieceVocabulary` encodes it). A `tokenizer.json` vocabulary (with the
companions it came with, e.g. phi-1's own) is copied. `tokenizer_config.json` names
`PreTrainedTokenizerFast`, the class that reads `tokenizer.json` whatever the model type.
Control pieces (`</s>`, `<pad>`) are special tokens: the literal text "</s>" encodes to EOS here,
while SentencePiece spells it out.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from etils import epath

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "added_tokens.json", "tokenizer.model")
SPACE_SYMBOL = "\u2581"


def sentencepiece_to_tokenizers(model_path: str):
    """A `tokenizers.Tokenizer` that encodes and decodes like the SentencePiece BPE model at
    `model_path` (see the module docstring); refuses a unigram model or a dummy prefix."""
    import tokenizers
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(epath.Path(model_path).read_bytes())
    kinds = sentencepiece_model_pb2.ModelProto.SentencePiece.Type
    if proto.trainer_spec.model_type != sentencepiece_model_pb2.TrainerSpec.BPE:
        raise ValueError(f"{model_path} is not a BPE SentencePiece model; only BPE converts exactly")
    if proto.normalizer_spec.add_dummy_prefix or proto.normalizer_spec.name not in ("identity", ""):
        raise ValueError(f"{model_path} normalises its input ({proto.normalizer_spec.name}, dummy prefix "
                         f"{proto.normalizer_spec.add_dummy_prefix}); only identity normalisation converts exactly")
    vocab: dict[str, int] = {}
    scores: dict[str, float] = {}
    special, user_defined = [], []
    for index, piece in enumerate(proto.pieces):
        text = piece.piece if piece.type in (kinds.BYTE, kinds.CONTROL, kinds.UNKNOWN) else \
            piece.piece.replace(SPACE_SYMBOL, " ")
        vocab[text] = index
        if piece.type in (kinds.CONTROL, kinds.UNKNOWN):
            special.append(text)
        elif piece.type == kinds.USER_DEFINED:
            user_defined.append(text)
        elif piece.type == kinds.NORMAL:
            scores[text] = piece.score
    merges = sorted(((text[:cut], text[cut:]) for text in scores if len(text) > 1 for cut in range(1, len(text))
                     if text[:cut] in scores and text[cut:] in scores),
                    key=lambda pair: (-scores[pair[0] + pair[1]], vocab[pair[0] + pair[1]], vocab[pair[0]]))
    unk = next((p.piece for p in proto.pieces if p.type == kinds.UNKNOWN), None)
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=merges, unk_token=unk,
                                                           byte_fallback=True, fuse_unk=True))
    tokenizer.decoder = tokenizers.decoders.Sequence([tokenizers.decoders.ByteFallback(),
                                                      tokenizers.decoders.Fuse()])
    tokenizer.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in special])
    tokenizer.add_tokens([tokenizers.AddedToken(t, special=False, normalized=False) for t in user_defined])
    return tokenizer


def write_hf_tokenizer(vocabulary_file: str, out_dir: str, *, eos_id: int, pad_id: int, bos_id: Optional[int],
                       model_max_length: int) -> list[str]:
    """Writes the tokenizer files of `vocabulary_file` (a SentencePiece `.model`, or a `tokenizer.json`
    whose companions beside it are copied too) into the local directory `out_dir`; returns their
    names. The vocabulary may be local or on gs://."""
    import tokenizers

    source = epath.Path(vocabulary_file)
    if vocabulary_file.endswith(".model"):
        tokenizer = sentencepiece_to_tokenizers(vocabulary_file)
        tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    else:
        tokenizer = tokenizers.Tokenizer.from_str(source.read_text())
        for name in TOKENIZER_FILES:
            companion = source if name == "tokenizer.json" else source.parent / name
            if companion.exists():
                (epath.Path(out_dir) / name).write_bytes(companion.read_bytes())
    config_path = os.path.join(out_dir, "tokenizer_config.json")
    if not os.path.exists(config_path):
        unk = tokenizer.model.unk_token if isinstance(tokenizer.model, tokenizers.models.BPE) else None
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": tokenizer.id_to_token(eos_id),
            "pad_token": tokenizer.id_to_token(pad_id),
            "bos_token": None if bos_id is None else tokenizer.id_to_token(bos_id),
            "unk_token": unk,
            "model_max_length": model_max_length,
            "clean_up_tokenization_spaces": False,  # code: decode exactly what was encoded
        }
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)
    return sorted(name for name in os.listdir(out_dir) if name in TOKENIZER_FILES)
