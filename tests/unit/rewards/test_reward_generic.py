"""Generic rewards: worked examples computed by hand, one table per family of rewards."""

import json
import pickle

import pytest

from mmreason.errors import RecipeError
from mmreason.rewards import REWARDS, bind_reward, resolve_reward
from mmreason.rewards import accuracy, format, grounding, penalties

# ------------------------------------------------------------------------------------------ format
FORMAT_CASES = [
    # (reward, completion, expected)
    ("think_answer_format", "<think>a</think>\n<answer>b</answer>", 1.0),
    ("think_answer_format", "<think>\n\n</think><answer>b</answer>", 1.0),  # empty thought is fine
    ("think_answer_format", "<think>a</think> so <answer>b</answer>", 0.0),  # text between blocks
    ("think_answer_format", "<think>a</think><think>b</think><answer>c</answer>", 0.0),
    ("think_answer_format", "<think>a</think><answer>b", 0.0),  # open answer
    ("think_answer_format", "<think>a<answer>b</answer></think>", 0.0),  # nested
    ("think_rethink_answer_format", "<think>a</think><rethink>b</rethink><answer>c", 1.0),
    ("think_rethink_answer_format", "<think>a</think><rethink>b</rethink><answer>c</answer>", 1.0),
    ("think_rethink_answer_format", "<rethink>b</rethink><think>a</think><answer>c", 0.0),
]


@pytest.mark.parametrize("name,completion,expected", FORMAT_CASES)
def test_format_table(name, completion, expected):
    assert REWARDS[name]([completion]) == [expected]


def test_tag_format_options():
    tool = ["<think>a</think><tool_call>{}</tool_call>"]
    assert format.tag_format(tool, tags=["think", "tool_call"]) == [1.0]
    assert format.tag_format(tool, tags=["think", "answer"]) == [0.0]
    assert format.tag_format(["Sure! <think>a</think><answer>b</answer> bye"], full_match=False) == [1.0]
    twice = ["<think>a</think><answer>b</answer><answer>c</answer>"]
    assert format.tag_format(twice, full_match=False) == [0.0]
    with pytest.raises(RecipeError):
        format.tag_format([], tags=["thought"])


def test_format_accepts_conversational_completions():
    conv = [[{"role": "assistant", "content": "<think>a</think><answer>b</answer>"}],
            [{"role": "assistant", "content": [{"type": "text", "text": "<think>a</think>"},
                                               {"type": "text", "text": "<answer>b</answer>"}]}]]
    assert format.think_answer_format(conv) == [1.0, 1.0]


# ---------------------------------------------------------------------------------------- accuracy
ACCURACY_CASES = [
    # (reward, completion, answer, expected)
    ("exact_match", "<answer>The Eiffel Tower.</answer>", "eiffel tower", 1.0),
    ("exact_match", "<answer>Eiffel</answer>", "eiffel tower", 0.0),
    ("exact_match", "no answer at all", "x", 0.0),
    ("choice_accuracy", "<answer>(B) a dog</answer>", "B", 1.0),
    ("choice_accuracy", "<answer>The answer is C.</answer>", "C. a cat", 1.0),
    ("choice_accuracy", "<answer>Blue</answer>", "B", 0.0),  # a word is not a letter
    ("numeric_accuracy", "<answer>about 101 m</answer>", "100", 1.0),  # 1% relative tolerance
    ("numeric_accuracy", "<answer>1,250</answer>", "1250", 1.0),
    ("numeric_accuracy", "<answer>98.9</answer>", "100", 0.0),
    ("math_accuracy", r"so \boxed{\frac{1}{2}}", "0.5", 1.0),
    ("math_accuracy", "<answer>0.4</answer>", "1/2", 0.0),
    ("accuracy", "<answer>B</answer>", "B. cat", 1.0),
    ("accuracy", "<answer>3.0</answer>", "3", 1.0),
    ("accuracy", "FINAL_ANSWER: a red car", "A red car", 1.0),
    ("accuracy", "<answer>2/4</answer>", "0.5", 1.0),  # math-verify
    ("accuracy", "<answer>dog</answer>", "cat", 0.0),
]


@pytest.mark.parametrize("name,completion,answer,expected", ACCURACY_CASES)
def test_accuracy_table(name, completion, answer, expected):
    assert REWARDS[name]([completion], answer=[answer]) == [expected]


def test_accuracy_none_without_ground_truth_and_solution_alias():
    assert accuracy.accuracy(["<answer>1</answer>"] * 2, answer=[None, "1"]) == [None, 1.0]
    assert accuracy.exact_match(["<answer>1</answer>"], solution=["1"]) == [1.0]


def test_numeric_tolerance_option():
    assert accuracy.numeric_accuracy(["<answer>105</answer>"], answer=["100"], rel_tol=0.1) == [1.0]
    out = accuracy.numeric_accuracy(["<answer>105</answer>"], answer=["100"], rel_tol=0.0, abs_tol=5)
    assert out == [1.0]
    with pytest.raises(RecipeError):
        accuracy.numeric_accuracy([], rel_tol=-1)


def test_llm_judge_requires_a_judge():
    with pytest.raises(RecipeError):
        bind_reward("llm_judge")
    with pytest.raises(RecipeError):
        bind_reward("accuracy", template="nope")


# --------------------------------------------------------------------------------------- grounding
GT = [{"label": "dog", "box": [100, 100, 200, 200], "image": 0}]


def test_box_iou_table_in_pixels():
    comps = ['<answer>{"bbox_2d": [100, 100, 200, 200]}</answer>',
             '<answer>{"bbox_2d": [100, 100, 200, 300]}</answer>',  # IoU = 1/2
             '<answer>{"bbox_2d": [150, 100, 250, 200]}</answer>',  # IoU = 5000/15000
             "<answer>no box</answer>"]
    out = grounding.box_iou(comps, boxes=[GT] * 4)
    assert out == pytest.approx([1.0, 0.5, 1 / 3, 0.0])
    assert grounding.box_iou_hit(comps, boxes=[GT] * 4, threshold=0.5) == [1.0, 1.0, 0.0, 0.0]
    # GIoU: the shifted box's hull is its union, so GIoU = IoU; a disjoint box 50 px away: 0 - 5000/25000
    far = '<answer>{"bbox_2d": [250, 100, 350, 200]}</answer>'
    assert grounding.box_giou(comps[2:] + [far], boxes=[GT] * 3) == pytest.approx([1 / 3, -1.0, -0.2])
    assert grounding.box_iou(comps[:1], boxes=[[]]) == [None]


def test_where_answer_ignores_boxes_in_the_reasoning():
    comp = '<think>first [0, 0, 50, 50]</think><answer>[100, 100, 200, 200]</answer>'
    assert grounding.box_iou([comp], boxes=[GT]) == [1.0]
    assert grounding.box_iou([comp], boxes=[GT], where="all") == [0.0]  # the first box of the text


def test_frames_norm1000_and_resized():
    # image 1000 x 500; the GT box in pixels is (100, 100, 200, 200)
    norm = '<answer>{"bbox_2d": [100, 200, 200, 400]}</answer>'  # 0-1000: x*1000/1000, y*1000/500
    assert grounding.box_iou([norm], boxes=[GT], coord_frame="norm1000", image_sizes=[[[1000, 500]]]) == [1.0]
    assert grounding.box_iou([norm], boxes=[GT], family="qwen2_vl", image_sizes=[[[1000, 500]]]) == [1.0]
    # resized frame given explicitly by the collator: 1000x500 -> 500x250
    resized = '<answer>{"bbox_2d": [50, 50, 100, 100]}</answer>'
    frames = [[{"width": 1000, "height": 500, "resized_width": 500, "resized_height": 250}]]
    assert grounding.box_iou([resized], boxes=[GT], coord_frame="resized", image_frames=frames) == [1.0]
    # read as pixels (the classic bug) it would miss the object entirely
    assert grounding.box_iou([resized], boxes=[GT], coord_frame="pixel") == [0.0]
    # no sizes: the frame cannot be known, so the row is not scored (None), not scored wrongly
    assert grounding.box_iou([resized], boxes=[GT], coord_frame="resized") == [None]


def test_resized_frame_from_family_smart_resize():
    # Qwen2.5-VL smart_resize(480, 640) -> (476, 644): x scale 644/640, y scale 476/480
    gt = [{"box": [64, 48, 320, 240], "image": 0}]
    model_box = [64 * 644 / 640, 48 * 476 / 480, 320 * 644 / 640, 240 * 476 / 480]
    comp = '<answer>{"bbox_2d": [%s]}</answer>' % ", ".join(f"{v:.4f}" for v in model_box)
    out = grounding.box_iou([comp], boxes=[gt], family="qwen2_5_vl", image_sizes=[[[640, 480]]])
    assert out[0] == pytest.approx(1.0, abs=1e-4)


def test_boxes_on_a_second_image_use_that_image_frame():
    gt = [{"box": [0, 0, 10, 10], "image": 1}]
    sizes = [[[1000, 1000], [100, 100]]]
    comp = "<answer>[0, 0, 100, 100]</answer>"  # 0-1000 of image 1 (100 px wide) -> (0, 0, 10, 10)
    assert grounding.box_iou([comp], boxes=[gt], coord_frame="norm1000", image_sizes=sizes) == [1.0]


def test_union_iou_and_map():
    gt = [{"box": [0, 0, 10, 10]}, {"box": [20, 0, 30, 10]}]
    # union of preds covers box 1 fully and half of box 2: inter 150, union 200
    comp = "[0, 0, 10, 10] [20, 0, 25, 10]"
    assert grounding.union_box_iou([comp], boxes=[gt]) == [pytest.approx(0.75)]
    # mAP: ranks [hit, miss, hit] over two GT boxes -> 0.835 at every threshold
    ranked = "<answer>[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]</answer>"
    assert grounding.box_map([ranked], boxes=[gt]) == [pytest.approx(84.3333 / 101, abs=1e-4)]
    # a box of IoU 0.6 counts at 0.5, 0.55 and 0.6: AP = 1 at 3 of 10 thresholds
    partial = "<answer>[0, 0, 10, 6]</answer>"
    assert grounding.box_map([partial], boxes=[[{"box": [0, 0, 10, 10]}]]) == [pytest.approx(0.3)]


def test_map_with_labels():
    gt = [{"label": "cat", "box": [0, 0, 10, 10]}, {"label": "dog", "box": [20, 0, 30, 10]}]
    comp = ('<answer>[{"bbox_2d": [0, 0, 10, 10], "label": "dog"}, '
            '{"bbox_2d": [20, 0, 30, 10], "label": "dog"}]</answer>')
    # class-agnostic: both found, AP 1. Per label: no prediction says "cat" (AP 0); for "dog" the true
    # box is ranked second after a false positive: precision 1/2 at every recall, AP 0.5 -> mean 0.25
    assert grounding.box_map([comp], boxes=[gt]) == [pytest.approx(1.0)]
    assert grounding.box_map([comp], boxes=[gt], match_labels=True) == [pytest.approx(0.25)]


# A two-object scene as the image_scenes builder writes it: the named red circle and a blue square of
# the same size beside it (meta.objects in original pixels, ints; the GT box in floats).
SCENE = {"image_size": [200, 100], "objects": [
    {"kind": "shape", "name": "circle", "color": "red", "box": [0, 0, 50, 50]},
    {"kind": "shape", "name": "square", "color": "blue", "box": [100, 0, 150, 50]}]}
NAMED = [{"label": "red circle", "box": [0.0, 0.0, 50.0, 50.0], "image": 0}]


def test_referring_iou_worked_examples():
    comps = ['{"bbox_2d": [0, 0, 50, 50]}',  # the named object: 1 - 0
             '{"bbox_2d": [100, 0, 150, 50]}',  # the distractor, same size: 0 - 1
             '{"bbox_2d": [0, 0, 50, 100]}',  # half on the named object, nothing else: 0.5 - 0
             '{"bbox_2d": [25, 0, 125, 50]}',  # straddles both: 1/5 - 1/5
             "no box"]
    n = len(comps)
    out = grounding.referring_iou(comps, boxes=[NAMED] * n, meta=[SCENE] * n)
    assert out == pytest.approx([1.0, -1.0, 0.5, 0.0, 0.0])
    # plain IoU pays the straddling box and cannot tell the distractor from empty space
    assert grounding.box_iou(comps, boxes=[NAMED] * n) == pytest.approx([1.0, 0.0, 0.5, 0.2, 0.0])
    half = grounding.referring_iou(comps[:2], boxes=[NAMED] * 2, meta=[SCENE] * 2, margin_weight=0.5)
    assert half == pytest.approx([1.0, -0.5])
    # a one-object scene (or no objects listed) scores the plain IoU; no GT box: not applicable
    alone = {**SCENE, "objects": SCENE["objects"][:1]}
    assert grounding.referring_iou(comps[2:3], boxes=[NAMED], meta=[alone]) == pytest.approx([0.5])
    assert grounding.referring_iou(comps[1:2], boxes=[NAMED]) == [0.0]
    assert grounding.referring_iou(comps[:1], boxes=[[]], meta=[SCENE]) == [None]


def test_referring_iou_frames_and_logged_wrong_object():
    # Qwen2.5-VL writes resized pixels (200x100 seen as 196x112): the distractor's box, mapped back
    frame = {"width": 200, "height": 100, "resized_width": 196, "resized_height": 112}
    box = [100 * 196 / 200, 0, 150 * 196 / 200, 50 * 112 / 100]
    comp = '{"bbox_2d": [%s]}' % ", ".join(f"{v:.4f}" for v in box)
    logged = {}
    out = grounding.referring_iou([comp, comp], boxes=[NAMED] * 2, meta=[SCENE, json.dumps(SCENE)],
                                  family="qwen2_5_vl", image_frames=[[frame]] * 2,
                                  log_metric=logged.__setitem__)
    assert out == pytest.approx([-1.0, -1.0], abs=1e-4)  # meta as a JSON string (on disk) reads the same
    assert logged["referring_iou/wrong_object"] == 1.0
    assert grounding.referring_iou([comp], boxes=[NAMED], meta=[SCENE], coord_frame="resized") == [None]
    with pytest.raises(RecipeError, match="margin_weight"):
        bind_reward("referring_iou", margin_weight=-1)


def test_object_overlap_is_the_one_wrong_object_test():
    named, others = [(0, 0, 50, 50)], [(100, 0, 150, 50)]
    assert grounding.object_overlap((100, 0, 150, 50), named, others).wrong_object is True
    assert grounding.object_overlap((0, 0, 40, 50), named, others).wrong_object is False
    assert grounding.object_overlap((60, 60, 90, 90), named, others).wrong_object is False  # nothing
    assert grounding.object_overlap((0, 0, 50, 50), named, []).wrong_object is None  # no other object
    # the named object is recognised by its box, whatever its number type
    assert grounding.scene_others({"meta": SCENE}, [(0.0, 0.0, 50.0, 50.0)]) == [(100.0, 0.0, 150.0, 50.0)]


def test_click_rewards():
    boxes = [[{"box": [0, 0, 10, 10]}]] * 3
    out = grounding.click_in_box(['{"point_2d": [5, 5]}', "[50, 50]", "no point"], boxes=boxes)
    assert out == [1.0, 0.0, 0.0]
    # a box answer counts by its centre
    assert grounding.click_in_box(["[2, 2, 8, 8]"], boxes=boxes[:1]) == [1.0]
    pts = [[{"point": [50, 50]}]]
    size = [[[100, 200]]]
    # distance in relative units: (0.1, 0.0) -> 0.1
    assert grounding.click_distance(["[60, 50]"], points=pts, image_sizes=size) == [1.0]
    assert grounding.click_distance(["[80, 50]"], points=pts, image_sizes=size) == [0.0]
    out = grounding.click_distance(["[60, 50]"], points=pts, image_sizes=size, shape="linear", radius=0.2)
    assert out == [pytest.approx(0.5)]
    assert grounding.click_distance(["[60, 50]"], points=pts) == [None]  # no size known


def test_box_iou_3d_acc_at_threshold():
    gt = [[{"label": "chair", "box": [0, 0, 0, 1, 1, 1]}]]
    comp = ["<answer>chair 1 <bbox>(0, 0, 0, 1, 1, 3)</bbox></answer>"]  # IoU 1/3
    assert grounding.box_iou_3d(comp, boxes_3d=gt) == [pytest.approx(1 / 3)]
    assert grounding.box_iou_3d(comp, boxes_3d=gt, threshold=0.25) == [1.0]
    assert grounding.box_iou_3d(comp, boxes_3d=gt, threshold=0.5) == [0.0]


# --------------------------------------------------------------------------------------- penalties
def test_penalties():
    assert penalties.repetition_penalty(["a b c d", "x x x x x"], ngram=2) == [0.0, -0.75]
    ids = [[1] * 5, [1] * 9, [1] * 20, None]
    out = penalties.length_penalty(["", "", "", ""], completion_ids=ids, max_length=10, cache_length=4)
    assert out == [0.0, -0.75, -1.0, None]
    with pytest.raises(RecipeError):
        bind_reward("length_penalty", max_length=10, cache_length=20)


# ---------------------------------------------------------------------------------------- registry
def test_registry_names_match_functions_and_bind_keeps_name():
    for name, fn in REWARDS.items():
        assert fn.__name__ == name, name
        assert fn.__doc__, name
    bound = bind_reward("box_iou_hit", threshold=0.7)
    assert bound.__name__ == "box_iou_hit"
    clone = pickle.loads(pickle.dumps(bound))
    assert clone.__name__ == "box_iou_hit"
    assert clone(['<answer>[0, 0, 10, 10]</answer>'], boxes=[[{"box": [0, 0, 10, 12]}]]) == [1.0]
    for fn in REWARDS.values():
        assert pickle.loads(pickle.dumps(fn)) is fn


def test_bind_errors_and_specs():
    with pytest.raises(RecipeError, match="unknown option"):
        bind_reward("box_iou", treshold=0.5)
    with pytest.raises(RecipeError):
        bind_reward("box_iou", coord_frame="pixels")  # not a frame
    with pytest.raises(RecipeError):
        bind_reward("box_iou", family="qwen9")
    with pytest.raises(RecipeError):
        bind_reward("grit", variant="both")
    assert resolve_reward("mmreason.rewards.grit:grit") is REWARDS["grit"]
    with pytest.raises(RecipeError, match="did you mean"):
        resolve_reward("box_iuo")


def test_wrong_length_output_is_padded_and_nan_becomes_zero():
    from mmreason.rewards._common import sanitize

    assert sanitize([float("nan"), None, float("inf")], 4) == [0.0, None, 0.0, 0.0]


def test_log_metric_receives_namespaced_means():
    logged = {}
    grounding.box_iou(['[0, 0, 10, 10]', 'none'], boxes=[[{"box": [0, 0, 10, 10]}]] * 2, where="all",
                      log_metric=lambda k, v: logged.__setitem__(k, v))
    assert logged["box_iou/mean"] == 0.5
    assert logged["box_iou/no_box"] == 1.0


# ------------------------------------------------------------------------------------ parsed once
def test_rewards_read_the_traces_they_are_given_instead_of_parsing(monkeypatch):
    from mmreason import traces
    from mmreason.rewards import _common

    # the traces say otherwise than the text: a reward that reads them scores what they say
    given = [traces.parse("<answer>[0, 0, 10, 10]</answer>"), traces.parse("<answer>red</answer>")]
    parses, parse = [], traces.parse
    monkeypatch.setattr(_common.traces, "parse", lambda text: parses.append(text) or parse(text))
    assert grounding.box_iou(["<answer>none</answer>"], boxes=[[{"box": [0, 0, 10, 10]}]],
                             traces=given[:1]) == [1.0]
    assert accuracy.accuracy(["<answer>blue</answer>"], answer=["red"], traces=given[1:]) == [1.0]
    assert parses == []
    # without them (TRL's call) each reward parses the row it reads, once
    assert grounding.box_iou(["<answer>none</answer>", "x"], boxes=[[{"box": [0, 0, 10, 10]}], None]) \
        == [0.0, None]
    assert parses == ["<answer>none</answer>", "x"]
    # a `traces` column that is not aligned with the completions is not used
    assert accuracy.accuracy(["<answer>blue</answer>"], answer=["red"], traces=given) == [0.0]


def test_vlm_r1_iou_convention_matches_its_reward():
    from mmreason.errors import RecipeError
    from mmreason.rewards import grounding as GR

    def theirs(b1, b2):  # VLM-R1's formula, restated for the comparison
        ix1, iy1 = max(b1[0], b2[0]), max(b1[1], b2[1])
        ix2, iy2 = min(b1[2] - 1, b2[2] - 1), min(b1[3] - 1, b2[3] - 1)
        inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if ix1 < ix2 and iy1 < iy2 else 0
        return inter / ((b1[2] - b1[0]) * (b1[3] - b1[1]) + (b2[2] - b2[0]) * (b2[3] - b2[1]) - inter)

    gt = [0, 0, 10, 10]
    for pred in ([9, 0, 20, 10], [5, 5, 15, 15], [0, 0, 10, 10], [9.5, 0, 19.5, 10], [0, 8.5, 10, 20]):
        comp = '<answer>{"bbox_2d": %s}</answer>' % pred
        got = GR.box_iou([comp], boxes=[[{"box": gt}]], coord_frame="pixel", iou_convention="vlm_r1")
        assert got == [pytest.approx(theirs(pred, gt))]
    # a 1-px overlap: VLM-R1 counts nothing where the continuous IoU counts it
    sliver = '<answer>{"bbox_2d": [9, 0, 19, 10]}</answer>'
    assert GR.box_iou([sliver], boxes=[[{"box": gt}]], coord_frame="pixel") == [pytest.approx(10 / 190)]
    assert GR.box_iou([sliver], boxes=[[{"box": gt}]], coord_frame="pixel", iou_convention="vlm_r1") == [0.0]
    assert GR.box_iou_hit([sliver], boxes=[[{"box": gt}]], coord_frame="pixel", threshold=0.05,
                          iou_convention="vlm_r1") == [0.0]
    with pytest.raises(RecipeError, match="iou_convention"):
        GR.box_iou([sliver], boxes=[[{"box": gt}]], iou_convention="inclusive")
