"""An offline Qwen2-style tokenizer for tiny models: byte-level BPE trained here, on a corpus made here.

The pre-tokenizer is Qwen2's (its split regex, then byte-level), so text splits the way it does for the
real models; only the merges differ. The corpus holds what this toolkit's models read and write:
English, digits, JSON boxes and tool calls, reasoning tags (`<think>`, `<rethink>`, `<answer>`, ...) as
ordinary text. It is fixed, so every tiny model of every seed shares one vocabulary.

Special tokens follow the family table. `<|...|>` tokens are special (never split, skipped when
decoding with `skip_special_tokens=True`); the tag-like ones (`<tool_call>`, `<think>`, ...) are added
tokens that are not special, as in the released Qwen tokenizers, so decoded reasoning keeps its tags.
eos is `<|im_end|>` and pad `<|endoftext|>`.

>>> tok = build_tokenizer("qwen2_5_vl")
>>> tok.eos_token, tok.pad_token
('<|im_end|>', '<|endoftext|>')
>>> tok.decode(tok("<think>2 boxes</think>").input_ids)
'<think>2 boxes</think>'
"""

from __future__ import annotations

import json
import random
from functools import lru_cache

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from mmreason.families import get_family

# Qwen2's pre-tokenisation regex (a fact about the format, so the splits match the real tokenizer).
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
BPE_VOCAB_SIZE = 4096  # byte alphabet + merges; enough for whole common words, small enough for tiny embeddings

_WORDS = """
the a an of to and in is it that on for with as this be are was at by from or which what where when
how why who there here these those has have had not but if then than so do does did can could would
should will may might must one two three four five six seven eight nine ten many more most some any
all each every both few first second third last next left right top bottom middle center up down
above below near far inside outside between behind front back side corner edge part whole small large
big tiny long short wide narrow tall high low bright dark light heavy red green blue yellow orange
purple pink brown black white gray color shape square circle triangle rectangle line dot box region
area point object person people man woman child dog cat bird car bus truck bicycle tree house window
door table chair cup bottle book phone screen button icon menu text label sign word number count
image picture photo video frame clip second minute time moment start end scene audio sound speech
voice music noise cloud room wall floor ceiling bed sofa lamp shelf desk scan depth distance size
height width length zoom crop rotate look see find locate show answer question reason think check
again because therefore first then finally step evidence detail visible hidden clear unclear correct
wrong maybe likely sure yes no true false true user assistant system tool call response helpful you
we they he she i me my your our their model click type scroll swipe press open close select input
move drag wait home return tap coordinate element app page browser search result
"""

_TAGS = ("think", "rethink", "answer", "tool_call", "tool_response", "bbox", "point", "ref", "look", "zoom")
_JSON_KEYS = ("bbox_2d", "point_2d", "label", "name", "arguments", "action", "coordinate", "text", "bbox_3d")


_PREFIXES = ("", "", "", "un", "re", "pre", "over", "out", "sub", "inter")
_SUFFIXES = ("", "", "s", "ed", "ing", "er", "est", "ly", "ness", "ment", "able", "tion", "ful", "less", "ward")


def _word_forms(words: list[str]) -> list[str]:
    """Every prefix/suffix variant of the base words: thousands of distinct forms, so BPE learns real merges."""
    return sorted({p + w + s for w in words for p in _PREFIXES for s in _SUFFIXES})


def _sentence(rng: random.Random, words: list[str], n: int) -> str:
    text = " ".join(rng.choice(words) for _ in range(n))
    return text[0].upper() + text[1:] + rng.choice((".", "?", "!", ",", ":", ";"))


def _corpus(lines: int = 6000) -> list[str]:
    """Deterministic training text (seed fixed on purpose: the vocabulary must not depend on the model seed)."""
    rng = random.Random(20240601)
    base = _WORDS.split()
    forms = _word_forms(base)
    out = []
    for i in range(lines):
        kind = i % 6
        if kind == 0:
            out.append(" ".join(_sentence(rng, base + forms, rng.randint(4, 14)) for _ in range(3)))
        elif kind == 1:
            box = sorted(rng.randrange(1000) for _ in range(2)) + sorted(rng.randrange(1000) for _ in range(2))
            out.append(json.dumps({"bbox_2d": [box[0], box[2], box[1], box[3]], "label": rng.choice(base)}))
        elif kind == 2:
            tag = rng.choice(_TAGS)
            out.append(f"<{tag}>{_sentence(rng, base, rng.randint(3, 12))}</{tag}>")
        elif kind == 3:
            args = {rng.choice(_JSON_KEYS): [rng.randrange(2000) for _ in range(rng.choice((2, 4, 6)))]}
            out.append(json.dumps({"name": rng.choice(("image_zoom_in_tool", "crop", "seek", "click")), "arguments": args}))
        elif kind == 4:
            floats = ",".join(f"{rng.uniform(-5, 5):.2f}" for _ in range(6))
            out.append(f"<think>{_sentence(rng, base, 8)}</think>\n<bbox>({floats})</bbox>\n<answer>{rng.randrange(100)}</answer>")
        else:
            out.append(" ".join(str(rng.randrange(10 ** rng.randint(1, 5))) for _ in range(12)))
    return out


@lru_cache(maxsize=1)
def _bpe_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train the shared byte-level BPE once per process (deterministic: fixed corpus, one thread's order)."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    return dict(model["vocab"]), merges


def family_added_tokens(family: str) -> tuple[list[str], list[str]]:
    """(special, plain) added tokens of a family, in table order, placeholders included."""
    fam = get_family(family)
    ordered = list(dict.fromkeys(fam.extra_special_tokens + fam.placeholder_tokens))
    special = [t for t in ordered if t.startswith("<|") and t.endswith("|>")]
    plain = [t for t in ordered if t not in special]
    return special, plain


def _named_tokens(family: str) -> dict[str, str]:
    """Named special tokens the family's processor reads from the tokenizer (`tokenizer.image_token` ...)."""
    fam = get_family(family)
    named = {"image_token": fam.image_token, "video_token": fam.video_token}
    if fam.audio_token:  # Omni's processor spells its markers bos/eos
        named |= {"audio_token": fam.audio_token, "vision_bos_token": fam.vision_start,
                  "vision_eos_token": fam.vision_end, "audio_bos_token": fam.audio_start, "audio_eos_token": fam.audio_end}
    else:
        named |= {"vision_start_token": fam.vision_start, "vision_end_token": fam.vision_end}
    return named


def build_tokenizer(family: str):
    """A `Qwen2Tokenizer` (the class every Qwen-VL family uses in transformers 5) with the family's tokens."""
    from transformers import Qwen2Tokenizer

    vocab, merges = _bpe_vocab_and_merges()
    special, plain = family_added_tokens(family)
    vocab = dict(vocab)
    for t in special + plain:  # ids after the BPE vocabulary, in table order, as in the released models
        vocab.setdefault(t, len(vocab))
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None,
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens=[t for t in special if t not in ("<|im_end|>", "<|endoftext|>")],
        errors="replace", **_named_tokens(family),
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    return tok
