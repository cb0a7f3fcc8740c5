"""Teacher rationales: a real HTTP teacher on 127.0.0.1, good and bad rewrites; only verified ones stay."""

import base64
import io
import re

import pytest
from chat_server import ChatServer
from PIL import Image

from mmreason import schema, traces
from mmreason.data_builders import image_scenes, teacher
from mmreason.geometry import iou


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("teach") / "src"
    image_scenes.build(out, n=8, seed=11, chunk_size=8, progress=False, qtypes=["color", "count", "relation"])
    return out


def _moved(b, size):
    """The same box half an image to the right (wrapping): no overlap with where it was."""
    w = b[2] - b[0]
    x1 = (b[0] + size[0] // 2) % max(1, size[0] - w)
    return (x1, b[1], x1 + w, b[3])


class Teacher:
    """An OpenAI-compatible chat server whose rewrites depend on the row: some right at once, some after a
    misplaced box, or a wrong answer and a broken tag, some never right."""

    def __init__(self, frame: str = "pixel"):
        self.calls: list[dict] = []
        self.tries: dict[str, int] = {}
        self.frame = frame
        self.server = ChatServer(self.reply)
        self.url = self.server.url

    def policy(self, template: str) -> int:
        """By the order rows are first seen (the build asks row by row): 0 right at once, 1 right after a
        misplaced box, 2 right after a wrong answer and a broken tag, 3 never right."""
        return list(self.tries).index(template) % 4

    def reply(self, body: dict) -> str:
        self.calls.append(body)
        user = body["messages"][-1]["content"]
        text = next(p["text"] for p in user if p["type"] == "text")
        answer = re.search(r"Correct answer: (.*)\n", text).group(1)
        template = text.split("A correct but stiff reasoning:\n")[1].split("\n\nRewrite")[0]
        size = tuple(int(v) for v in re.search(r"this (\d+)x(\d+) image", text).groups())
        boxes = [(m.box, m.label) for m in traces.parse(template).boxes]
        k = self.tries[template] = self.tries.get(template, 0) + 1
        policy = self.policy(template)
        if policy == 3 or (policy == 1 and k == 1):  # a box that is somewhere else
            boxes = [(_moved(b, size), lab) for b, lab in boxes] or [((1, 1, 9, 9), "extra")]
        if policy == 2 and k == 1:
            answer = answer + " and something else"
        if self.frame == "norm1000":
            sx, sy = 1000 / size[0], 1000 / size[1]
            boxes = [((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy), lab) for b, lab in boxes]
        seen = "; ".join(f"the {lab} shows up at {traces.render_box([round(v) for v in b], label=lab)}"
                         for b, lab in boxes)
        think = f"Let me look at the picture properly. {seen}. That settles it."
        if policy == 2 and k == 2:
            return f"<think>{think}<rethink>Yes.</rethink><answer>{answer}</answer>"  # </think> forgotten
        rethink = "<rethink>Checking again, that holds.</rethink>"
        return f"<think>{think}</think>\n{rethink}\n<answer>{answer}</answer>"

    def close(self):
        self.server.close()


def test_only_verified_rewrites_are_kept(source, tmp_path):
    srv = Teacher()
    try:
        out = teacher.build(tmp_path / "t", n=0, src=str(source), base_url=srv.url, k=3, iou=0.7,
                            progress=False)
    finally:
        srv.close()
    src_rows = {r["id"]: r for r in schema.load_rows(source)}
    rows = list(schema.load_rows(out))
    policies = {q: srv.policy(q) for q in srv.tries}
    assert sorted(set(policies.values())) == [0, 1, 2, 3]  # the fixture exercises every behaviour
    assert len(rows) == sum(p != 3 for p in policies.values()) and len(rows) < len(src_rows)
    for row in rows:
        src = src_rows[row["meta"]["source_id"]]
        text = row["messages"][-1]["content"][0]["text"]
        assert text != row["meta"]["traces"]["template"] and "properly" in text
        t = traces.parse(text)
        assert not t.issues and t.answer == src["answer"]
        gt = [r["box"] for r in src["rationale_regions"]]
        assert len(t.boxes) == len(gt) and all(any(iou(m.box, g) >= 0.7 for m in t.boxes) for g in gt)
        policy = srv.policy(row["meta"]["traces"]["template"])
        assert row["meta"]["teacher"]["tries"] == {0: 1, 1: 2, 2: 3}[policy]
        ours, theirs = out / schema.images_of(row)[0], source / schema.images_of(src)[0]
        with Image.open(ours) as a, Image.open(theirs) as b:
            assert a.tobytes() == b.tobytes()
    card = (out / "README.md").read_text()
    for counter in ("kept", "rejected", "rejected_boxes", "rejected_answer", "rejected_format", "tries"):
        assert f"| {counter} |" in card
    # the teacher saw the picture (as a data URL) and a different seed on every try of a question
    first = srv.calls[0]["messages"][-1]["content"][0]["image_url"]["url"]
    Image.open(io.BytesIO(base64.b64decode(first.split(",", 1)[1]))).verify()
    seeds = [c["seed"] for c in srv.calls]
    assert len(set(seeds)) == len(seeds)


def test_teacher_frame_is_converted_to_pixels(source, tmp_path):
    srv = Teacher(frame="norm1000")
    try:
        out = teacher.build(tmp_path / "n", n=4, src=str(source), base_url=srv.url, k=3, iou=0.7,
                            progress=False, teacher_frame="norm1000", on_reject="keep_template")
    finally:
        srv.close()
    rows = list(schema.load_rows(out))
    # the never-right row keeps its template
    assert len(rows) == 4 and sum(r["meta"]["teacher"]["kept"] for r in rows) == 3
    for row in rows:
        meta = row["meta"]
        text = row["messages"][-1]["content"][0]["text"]
        if not meta["teacher"]["kept"]:
            assert text == meta["traces"]["template"] and len(meta["teacher"]["rejections"]) == 3
            continue
        want = [r["box"] for r in row["rationale_regions"]]
        got = [m.box for m in traces.parse(text).boxes]
        assert all(any(max(abs(a - b) for a, b in zip(g, w)) <= 1 for w in want) for g in got)  # pixels again


def test_local_hf_teacher_runs_and_random_output_is_rejected(source, tmp_path, tiny_model_dir):
    path = tiny_model_dir("qwen2_5_vl")
    out = teacher.build(tmp_path / "hf", n=2, src=str(source), hf_model=str(path), k=2, max_tokens=12,
                        on_reject="keep_template", progress=False)
    rows = list(schema.load_rows(out))
    assert len(rows) == 2
    for row in rows:
        assert row["meta"]["teacher"] == {"model": str(path), "kept": False, "tries": 2,
                                          "rejections": row["meta"]["teacher"]["rejections"]}
        assert all(r in ("format", "answer", "boxes") for r in row["meta"]["teacher"]["rejections"])
    assert "| rejected | 2 |" in (out / "README.md").read_text()


def test_verification_rules():
    row = {"answer": "3", "rationale_regions": [{"box": [10, 10, 50, 50], "image": 0}], "boxes": []}
    opts = {**teacher.DEFAULTS, "iou": 0.5}
    good = '<think>the box {"bbox_2d": [12, 11, 50, 52]}</think><answer>3.0</answer>'
    assert teacher.verify(good, row, (100, 100), opts) == (None, [(12.0, 11.0, 50.0, 52.0)])
    assert teacher.verify(good.replace("3.0", "4"), row, (100, 100), opts)[0] == "answer"
    extra = good.replace("</think>", ' and {"bbox_2d": [70, 70, 90, 90]}</think>')
    assert teacher.verify(extra, row, (100, 100), opts)[0] == "boxes"
    assert teacher.verify("<answer>3</answer>", row, (100, 100), opts)[0] == "format"
    assert teacher.verify(None, row, (100, 100), opts)[0] == "format"  # never raises on teacher output
    moved = teacher.to_pixels("<think>(1, 2, 3, 4)</think>", [(10, 20, 30, 40)])
    assert moved == "<think>(10, 20, 30, 40)</think>"
    with pytest.raises(ValueError, match="exactly one"):
        teacher.build("unused", n=1, src="x")
