"""ViRL: step classification and shaping (our documented reading of the abstract), worked by hand."""

import pytest

from mmreason.errors import RecipeError
from mmreason.rewards import virl as V


def zoom(box):
    return '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": %s}}</tool_call>' % list(box)


R0, R1 = [0, 0, 10, 10], [20, 20, 40, 40]
REGIONS = [{"label": "a", "box": R0, "image": 0}, {"label": "b", "box": R1, "image": 0}]
FAR = [100, 100, 120, 120]

# (completion, answer correct?, step labels, sequence reward)
# virl = 1·acc + 0.5·mean(step scores) + 0.5·coverage; scores: correct 1, redundant -0.2, erroneous -0.5
TABLE = [
    (zoom(R0) + zoom(R1) + "<answer>cat</answer>", True, ["correct", "correct"], 1 + 0.5 * 1 + 0.5 * 1),
    (zoom(R0) + zoom(R0) + "<answer>dog</answer>", False, ["correct", "redundant"], 0.5 * 0.4 + 0.5 * 0.5),
    (zoom(FAR) + zoom(FAR) + "<answer>cat</answer>", True, ["erroneous", "redundant"], 1 + 0.5 * -0.35),
    ("<answer>cat</answer>", True, [], 1 + 0.5 * -0.5),  # no visual action: actions are mandatory
    (zoom([0, 0, 10, 20]) + "<answer>cat</answer>", True, ["correct"], 1 + 0.5 + 0.25),  # IoU 0.5 = tau
    (zoom([0, 0, 10, 21]) + "<answer>cat</answer>", True, ["erroneous"], 1 - 0.25),  # IoU 100/210 < tau
    ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2]}}</tool_call><answer>cat',
     True, ["erroneous"], 1 - 0.25),  # an action without a usable box
    # an inline box in the reasoning is a step too
    ("<think>the cat at [0, 0, 10, 10]</think><answer>cat</answer>", True, ["correct"], 1 + 0.5 + 0.25),
]


@pytest.mark.parametrize("completion,correct,labels,expected", TABLE)
def test_virl_table(completion, correct, labels, expected):
    steps = V.virl_step_scores(completion, REGIONS)
    assert [s.label for s in steps] == labels
    assert V.virl([completion], answer=["cat"], rationale_regions=[REGIONS]) == [pytest.approx(expected)]
    assert (V.virl([completion], answer=["cat"]) == [1.0]) is correct  # no regions: accuracy only


def test_step_spans_and_outcome_shaping():
    text = zoom(R0) + " then " + zoom(FAR) + "<answer>cat</answer>"
    steps = V.virl_step_scores(text, REGIONS, correct=True)
    assert [text[s.start:s.end].startswith("<tool_call>") for s in steps] == [True, True]
    assert steps[0].end <= steps[1].start
    # shaped_k = s_k + 0.5 · 0.9^(K-1-k) · acc
    assert [s.shaped for s in steps] == pytest.approx([1 + 0.5 * 0.9, -0.5 + 0.5])
    assert [s.region for s in steps] == [0, None]
    unshaped = V.virl_step_scores(text, REGIONS)
    assert [s.shaped for s in unshaped] == [s.score for s in unshaped]
    wrong = V.virl_step_scores(text, REGIONS, correct=False)
    assert [s.shaped for s in wrong] == [1.0, -0.5]


def test_frames_and_constants_are_options():
    # a 0-1000 model on a 200 x 100 image: R0 in pixels is (0, 0, 50, 100) in 0-1000
    steps = V.virl_step_scores(zoom([0, 0, 50, 100]), REGIONS, coord_frame="norm1000",
                               image_sizes=[[200, 100]])
    assert [s.label for s in steps] == ["correct"]
    assert V.virl_step_scores(zoom([0, 0, 50, 100]), REGIONS)[0].label == "erroneous"  # read as pixels
    strict = V.virl_step_scores(zoom([0, 0, 10, 12]), REGIONS, tau=0.9)
    assert strict[0].label == "erroneous"
    custom = V.virl([zoom(R0) + "<answer>cat"], answer=["cat"], rationale_regions=[REGIONS],
                    correct_reward=2.0, step_weight=1.0, coverage_weight=0.0)
    assert custom == [pytest.approx(1 + 2.0)]
    with pytest.raises(RecipeError):
        V.virl([], tau=0.0)


def test_inline_boxes_can_be_excluded_and_no_ground_truth_is_none():
    text = "<think>[0, 0, 10, 10]</think>" + zoom(R1)
    assert [s.kind for s in V.virl_step_scores(text, REGIONS)] == ["box", "zoom"]
    assert [s.kind for s in V.virl_step_scores(text, REGIONS, inline_boxes=False)] == ["zoom"]
    assert V.virl([text], answer=[None]) == [None]


def test_step_reward_takes_the_options_of_virl():
    from mmreason.rewards import REWARDS, STEP_REWARDS, reward_options

    assert set(STEP_REWARDS) <= set(REWARDS)
    assert V.STEP_OPTIONS <= set(reward_options(V.virl))
    assert {"judge", "step_weight"}.isdisjoint(V.STEP_OPTIONS)  # those steer only the sequence reward
    text = zoom([0, 0, 10, 20]) + "<answer>cat</answer>"  # IoU 0.5 with R0
    row = {"answer": "cat", "rationale_regions": REGIONS}
    assert [round(v, 4) for _, _, v in V.virl_steps(text, row)] == [1.5]  # correct at tau 0.5
    # erroneous at tau 0.6: -0.5 + its outcome share 0.5
    assert [round(v, 4) for _, _, v in V.virl_steps(text, row, tau=0.6, step_weight=2.0)] == [0.0]
