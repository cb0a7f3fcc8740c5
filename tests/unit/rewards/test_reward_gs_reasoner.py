"""GS-Reasoner: GCoT format, named 3D grounding, VSI-Bench MCQ and MRA, by hand.

The criteria are those of GS-Reasoner's evaluation (llava/eval/box_utils.py in github.com/WU-CVGL/GS-Reasoner)
and VSI-Bench's; the method itself is trained by SFT only, with no reward.
"""

import pytest

from mmreason.errors import RecipeError
from mmreason.rewards import gs_reasoner as GS

# MRA = mean over θ in {0.50, …, 0.95} of 1[|pred - gt| / gt < 1 - θ]
MRA_TABLE = [
    (2.0, 2.0, 1.0),    # error 0 beats every threshold
    (1.96, 2.0, 1.0),   # error 0.02 < 0.05
    (2.2, 2.0, 0.8),    # error 0.1: below 0.50 … 0.15 (8 of 10), not below 0.10 or 0.05
    (2.5, 2.0, 0.5),    # error 0.25: below 0.50, 0.45, 0.40, 0.35, 0.30
    (3.0, 2.0, 0.0),    # error 0.5 is not < 0.5
    (-2.0, 2.0, 0.0),
    (0.0, 0.0, 1.0),    # gt 0: exact match only
    (0.1, 0.0, 0.0),
    (None, 2.0, 0.0),
]


@pytest.mark.parametrize("pred,gt,expected", MRA_TABLE)
def test_mra_table(pred, gt, expected):
    assert GS.mean_relative_accuracy(pred, gt) == pytest.approx(expected)


VSI_TABLE = [
    ("<answer>B</answer>", "B", 1.0),
    ("<answer>B. the sofa</answer>", "B", 1.0),
    ("<answer>(C)</answer>", "B", 0.0),
    ("<answer>2.2 meters</answer>", "2", 0.8),
    ("<answer>about 25</answer>", "20", 0.5),
    ("<answer>none</answer>", "20", 0.0),
    ("no answer", "B", 0.0),
]


@pytest.mark.parametrize("completion,answer,expected", VSI_TABLE)
def test_vsi_accuracy_table(completion, answer, expected):
    assert GS.vsi_accuracy([completion], answer=[answer]) == [pytest.approx(expected)]


GT3D = [{"label": "coffee table", "box": [0, 0, 0, 2, 2, 1]}, {"label": "chair", "box": [5, 5, 5, 6, 6, 6]}]


def test_grounding_by_name():
    text = ("<think>coffee_table 1 <bbox>(0, 0, 0, 2, 2, 2)</bbox>, chair 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox>, "
            "lamp 1 <bbox>(5, 5, 5, 6, 6, 6)</bbox> so B</think><answer>B</answer>")
    # coffee_table: inter 4 / union 8 = 0.5; chair: no overlap 0; lamp: no GT lamp 0 (even though it
    # sits exactly on the chair) -> mean 1/6
    assert GS.gs_grounding([text], boxes_3d=[GT3D]) == [pytest.approx(0.5 / 3)]
    assert GS.gs_grounding([text], boxes_3d=[[]]) == [None]
    assert GS.gs_grounding(["<think>no boxes</think><answer>B</answer>"], boxes_3d=[GT3D]) == [0.0]


FORMAT_TABLE = [
    ("<think>chair 2 <bbox>(0, 0, 0, 1, 1, 1)</bbox><bbox>(2, 0, 0, 3, 1, 1)</bbox> so</think>"
     "<answer>B</answer>", 1.0),
    ("<think>plain reasoning</think><answer>4</answer>", 1.0),  # boxes may be skipped
    ("<think><bbox>(0, 0, 0, 1, 1, 1)</bbox></think><answer>B</answer>", 0.0),  # no name/count
    ("<think>chair 1 <bbox>(0, 0, 0, 1, 1)</bbox></think><answer>B</answer>", 0.0),  # 5 numbers
    ("<think>chair 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox></think>", 0.0),  # no answer
    ("<answer>B</answer>", 0.0),
]


@pytest.mark.parametrize("completion,expected", FORMAT_TABLE)
def test_format_table(completion, expected):
    assert GS.gs_format([completion]) == [expected]


def test_combined_reward():
    text = "<think>coffee_table 1 <bbox>(0, 0, 0, 2, 2, 2)</bbox> so B</think><answer>B</answer>"
    # 0.5 · format 1 + 1 · answer 1 + 1 · grounding 0.5
    assert GS.gs_reasoner([text], answer=["B"], boxes_3d=[GT3D]) == [pytest.approx(2.0)]
    # no 3D ground truth: that term is left out
    assert GS.gs_reasoner([text], answer=["B"]) == [pytest.approx(1.5)]
    assert GS.gs_reasoner([text]) == [None]
    with pytest.raises(RecipeError):
        GS.vsi_accuracy([], mode="f1")
    # forcing MRA on a letter answer scores the number in the prediction
    assert GS.vsi_accuracy(["<answer>3</answer>"], answer=["3"], mode="mra") == [1.0]
