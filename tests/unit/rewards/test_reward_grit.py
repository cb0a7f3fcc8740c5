"""GRIT: the paper's and the released code's rewards, on worked examples computed by hand.

Paper: arXiv 2505.15879 §3.2; code: grpo-gr/rewards.py and grpo-gr/GRPO_GRTrainer.py in
github.com/eric-ai-lab/GRIT.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreason.errors import RecipeError
from mmreason.rewards import grit as G

COUNT = ("<think>I see cups at 10, 20, 30, 40 and 50, 60, 70, 80</think>\n<rethink>two cups</rethink>\n"
         "<answer>2</answer>")
VSR = '<think>the cat is left of the dog {"bbox_2d": [1, 2, 30, 40]}</think><answer>right</answer>'
SMALL = "<think>a 1, 2, 3, 4</think><rethink>b</rethink><answer>1</answer>"

terms = dict  # the six code terms, by name

# (completion, row, paper total, code total, code terms) — one batch of one row each.
TABLE = [
    # Counting row, everything right.
    # paper: s_st 1 + s_bf 0.5 + count 0.5 + gpt 1 + 0.1·BLEU 1          = 3.1
    # code:  gpt 1 + bleu 0.1·0.5 ("2 answer" vs "2") + answer fmt 0.5 + repetition 0.5 (16 words, no
    #        repeats, no ids) + grounded 0.5 + count bonus 1.0 + think/rethink 5/5·0.5 = 4.05
    (COUNT, {"answer": "2", "task": "counting", "source": "tallyqa"}, 3.1, 4.05,
     terms(gpt=1.0, bleu=0.05, answer_format=0.5, repetition=0.5, grounded_format=1.5, think_rethink=0.5)),
    # VSR row, wrong answer, no <rethink>.
    # paper: s_st 0.5 (think only) + s_bf 0.5 (one integer bbox_2d in the whole text) = 1.0
    # code:  answer fmt 0.5 + repetition 0.5 (12 words) + think/rethink 2/5·0.5 = 1.2
    (VSR, {"answer": "left", "source": "vsr"}, 1.0, 1.2,
     terms(gpt=0.0, bleu=0.0, answer_format=0.5, repetition=0.5, grounded_format=0.0, think_rethink=0.2)),
    # A completion without any tag: nothing but the code's repetition term (short text -> 0.5).
    ("just 2", {"answer": "2", "task": "counting"}, 0.0, 0.5,
     terms(gpt=0.0, bleu=0.0, answer_format=0.0, repetition=0.5, grounded_format=0.0, think_rethink=0.0)),
]


@pytest.mark.parametrize("completion,row,paper,code,terms", TABLE)
def test_grit_table(completion, row, paper, code, terms):
    cols = {k: [v] for k, v in row.items()}
    assert G.grit([completion], variant="paper", **cols) == [pytest.approx(paper)]
    assert G.grit([completion], variant="code", **cols) == [pytest.approx(code)]
    singles = {"gpt": G.grit_gpt_score, "bleu": G.grit_bleu, "answer_format": G.grit_answer_format,
               "repetition": G.grit_repetition, "grounded_format": G.grit_grounded_format,
               "think_rethink": G.grit_think_rethink_format}
    for key, fn in singles.items():
        assert fn([completion], **cols) == [pytest.approx(terms[key])], key


def test_count_bonus_uses_the_batch_first_row_in_code_only():
    vsr = {"answer": "left", "source": "vsr"}
    count = {"answer": "1", "task": "counting"}
    rows = [vsr, count]
    cols = {k: [r.get(k) for r in rows] for k in ("answer", "source", "task")}
    comps = [VSR, SMALL]
    # row 2, paper: s_st 1 + s_bf 0.5 + count 0.5 + gpt 1 + bleu 0.1 = 3.1 regardless of its neighbours
    assert G.grit(comps, variant="paper", **cols)[1] == pytest.approx(3.1)
    # row 2, code: gpt 1 + bleu 0.05 + answer fmt 0.5 + repetition 0.5 (5 words) + grounded 0.5 (no bonus:
    # the batch's first row is VSR) + think/rethink 0.5 = 3.05; first in its own batch it gets the +1.0
    assert G.grit(comps, variant="code", **cols)[1] == pytest.approx(3.05)
    assert G.grit([SMALL], variant="code", answer=["1"], task=["counting"]) == [pytest.approx(4.05)]


def test_count_bonus_paper_half_vs_code_one():
    cols = {"answer": ["1"], "task": ["counting"]}
    wrong_count = "<think>a 1, 2, 3, 4 and 5, 6, 7, 8</think><rethink>b</rethink><answer>1</answer>"
    # two boxes for a count of 1: no bonus in either variant
    assert G.grit([SMALL], variant="paper", **cols)[0] - G.grit([wrong_count], variant="paper", **cols)[0] \
        == pytest.approx(0.5)
    assert G.grit_grounded_format([SMALL], **cols)[0] - G.grit_grounded_format([wrong_count], **cols)[0] \
        == pytest.approx(1.0)


def test_repetition_with_token_ids():
    text = " ".join("abcdefgh" * 2)  # 16 words: the first 8-gram is repeated immediately
    ids = [list(range(1, 9)) * 2 + [G.PAD_TOKEN_ID] * 3]
    # s_word = 1 - 1/8 (8 comparisons, one repeat); ids cut at the pad: 16 ids, 1 pair, repeated -> s_tok 0
    # 0.5 · (0 - (1 - 0.875)) = -0.0625
    assert G.grit_repetition([text], completion_ids=ids) == [pytest.approx(-0.0625)]
    # fewer than 16 ids: the code returns the full 0.5 whatever the words do
    assert G.grit_repetition([text], completion_ids=[[1] * 10]) == [0.5]


def test_bleu_matches_the_definition():
    # BLEU-1 = brevity penalty · clipped unigram precision; hyp 2 tokens vs ref 4 -> e^(1-4/2) · 1
    assert G.bleu1("a b", "a b c d") == pytest.approx(0.36787944, abs=1e-6)
    assert G.bleu1("a a a", "a") == pytest.approx(1 / 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("a b c d e 7 x".split()), max_size=12),
       st.lists(st.sampled_from("a b c d e 7 x".split()), max_size=12))
def test_bleu_equals_nltk_sentence_bleu(hyp, ref):
    """GRIT calls nltk's sentence_bleu with weights (1, 0, 0, 0); our direct formula must agree."""
    import warnings

    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = float(sentence_bleu([ref], hyp, weights=(1, 0, 0, 0))) if hyp and ref else 0.0
    assert G.bleu1(" ".join(hyp), " ".join(ref)) == pytest.approx(expected)


def test_ovd_rows_get_no_gpt_term_and_bad_variant_fails():
    assert G.grit_gpt_score(["<answer>x</answer>"], answer=["x"], source=["ovd_position"]) == [0.0]
    assert G.grit_gpt_score(["<answer>x</answer>"], answer=["x"], source=["vsr"]) == [1.0]
    with pytest.raises(RecipeError):
        G.grit([], variant="both")


def test_decimal_boxes_do_not_count_as_grit_boxes():
    text = "<think>at 1.5, 2.5, 3.5, 4.5</think><rethink>r</rethink><answer>x"
    assert G.grit_grounded_format([text], answer=["x"]) == [0.0]


def test_a_stray_closing_answer_tag_opens_no_answer():
    # The code reads the answer off the literal text: split('<answer>', 1). With no '<answer>' at all, both
    # the judge term and BLEU are 0 (the judge is not even asked); with a stray '</answer>' before the real
    # '<answer>', the real one is what is read.
    stray = "</answer> 7"
    assert G.grit_bleu([stray], answer=["7"]) == [0.0]
    assert G.grit_gpt_score([stray], answer=["7"]) == [0.0]  # offline rule: no answer, nothing to match
    late = "x 7 </answer> y <answer>7</answer>"
    assert G.grit_bleu([late], answer=["7"]) == [pytest.approx(0.05)]  # "7 answer" vs "7"
    assert G.grit_gpt_score([late], answer=["7"]) == [1.0]
    assert G.grit_gpt_score(["no tags 7 </answer>"], answer=["x 7 </answer>"]) == [0.0]
