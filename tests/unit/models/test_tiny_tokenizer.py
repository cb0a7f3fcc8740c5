"""The locally trained tokenizer: Qwen2 splitting, the family's special tokens and their roles."""

import pytest

from mmreason.families import FAMILIES, get_family
from mmreason.models.tokenizer import _bpe_vocab_and_merges, build_tokenizer, family_added_tokens


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_special_tokens_are_single_ids_with_roles(family):
    tok = build_tokenizer(family)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    fam = get_family(family)
    special, plain = family_added_tokens(family)
    assert set(special + plain) == set(fam.extra_special_tokens + fam.placeholder_tokens)
    for token in special + plain:
        ids = tok(token, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == token
    # special tokens vanish with skip_special_tokens; tag-like added tokens stay, as in the released tokenizers
    text = f"<|im_start|>{fam.image_token}<tool_call>x</tool_call><|im_end|>"
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == "<tool_call>x</tool_call>"
    assert tok.image_token == fam.image_token and tok.image_token_id == tok.convert_tokens_to_ids(fam.image_token)


def test_reasoning_text_round_trips_and_splits_digits():
    tok = build_tokenizer("qwen2_5_vl")
    text = '<think>The red square is left.</think>\n<rethink>check</rethink><answer>{"bbox_2d": [12, 340, 56, 78]}</answer>'
    ids = tok(text).input_ids
    assert tok.decode(ids) == text
    pieces = tok.convert_ids_to_tokens(tok("340").input_ids)
    assert pieces == ["3", "4", "0"]  # Qwen2's pre-tokenizer splits numbers into single digits
    assert len(tok(" square").input_ids) == 1  # common words are whole tokens: the merges were really learnt
    assert "<think>" not in tok.get_added_vocab()  # ordinary text for Qwen2.5-VL ...
    assert "<think>" in build_tokenizer("qwen3_vl").get_added_vocab()  # ... an added token for Qwen3-VL


def test_training_is_deterministic_and_sized():
    vocab, merges = _bpe_vocab_and_merges()
    again_vocab, again_merges = _bpe_vocab_and_merges.__wrapped__()
    assert (vocab, merges) == (again_vocab, again_merges)
    assert len(merges) > 3000 and len(vocab) == 4096
