"""The completion loss against Hugging Face's own per-token loss on the same weights."""

import numpy as np
import pytest
import torch

from evaluation.completion_loss import completion_loss, fit_to_context
from phi1_jax.convert import from_hf
from tests.hf_reference import hf_model, save_hf_model


def _hf_completion_nll(model, prompt, completion):
    ids = torch.as_tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(ids).logits.float()[0, :-1], dim=-1)
    targets = ids[0, 1:]
    nll = -log_probs[torch.arange(len(targets)), targets].numpy()
    return nll[len(prompt) - 1:]


def test_matches_hf_per_token_loss_on_completion_tokens_only(tmp_path):
    model = hf_model("h4_v101")
    config, params = from_hf(save_hf_model(model, str(tmp_path / "hf")))
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 101, n).tolist(), rng.integers(0, 101, m).tolist())
             for n, m in [(5, 3), (1, 9), (12, 4), (7, 7), (3, 1)]]
    result = completion_loss(config, params, pairs, batch_size=2)
    expected = np.concatenate([_hf_completion_nll(model, p, c) for p, c in pairs])
    assert result.tokens == len(expected) == sum(len(c) for _, c in pairs)
    assert result.nats_per_token == pytest.approx(float(expected.mean()), rel=1e-4)
    assert result.truncated_completions == 0


def test_long_pairs_keep_the_end_of_the_prompt_and_say_when_a_completion_is_cut():
    tokens, first, truncated = fit_to_context(list(range(10)), [100, 101, 102], max_len=5)
    assert (tokens, first, truncated) == ([8, 9, 100, 101, 102], 2, False)
    tokens, first, truncated = fit_to_context([1, 2], list(range(100, 110)), max_len=5)
    assert (tokens, first, truncated) == ([2, 100, 101, 102, 103], 1, True)
    with pytest.raises(ValueError, match="at least one prompt token"):
        fit_to_context([], [1], max_len=5)


def test_pairs_are_tokenized_as_training_sees_the_whole_text():
    from data_pipeline.seqio_data.vocabularies import load_vocabulary
    from evaluation.completion_loss import encode_pair
    from evaluation.problems import load_problems

    vocab = load_vocabulary("")
    for problem in list(load_problems().values())[:20]:
        prompt_ids, completion_ids = encode_pair(vocab.encode, problem.prompt, problem.canonical_solution)
        whole = list(vocab.encode(problem.prompt + problem.canonical_solution))
        assert prompt_ids + completion_ids == whole
        assert len(prompt_ids) >= len(vocab.encode(problem.prompt)) - 1
        assert vocab.decode(completion_ids).strip() in problem.canonical_solution
