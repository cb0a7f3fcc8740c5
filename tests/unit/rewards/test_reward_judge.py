"""The LLM judge against a real HTTP server on 127.0.0.1 speaking /v1/chat/completions."""

import asyncio
import json
import re
import time
from collections import Counter

import pytest
from chat_server import ChatServer, Raw

from mmreason.errors import RecipeError
from mmreason.rewards import accuracy, deepeyes, grit, infigui
from mmreason.rewards.judge import JudgeConfig, JudgeItem, as_judge_config, judge, parse_reply


class JudgeServer(ChatServer):
    """Judges named by their model: each answers (or fails) its own way; requests counted per model and
    per (model, prompt)."""

    def __init__(self):
        super().__init__()
        self.requests = Counter()
        self.per_prompt = Counter()

    @property
    def headers_seen(self):
        return [headers for _, _, headers in self.seen]

    def answer(self, body):
        model, prompt = body["model"], body["messages"][-1]["content"]
        with self.lock:
            self.requests[model] += 1
            count = self.requests[model]
            self.per_prompt[model, prompt] += 1
            asked = self.per_prompt[model, prompt]
        if model == "sleepy":
            time.sleep(1.5)
        if model == "malformed":
            return Raw(200, b"<html>not a completion</html>")
        if model == "flaky" and count == 1:
            return Raw(500, b"overloaded")
        garbage = {"garbage_once": 1, "garbage_7": 7}.get(model)
        if garbage is not None:  # a judge that rambles the first times it sees a question, then answers
            if "Model's answer:" in prompt:  # GRIT's template wants a score
                return "hmm" if asked <= garbage else "{score: 1}"
            valid = "## Equivalence Judgement\n" + ("TRUE" if _grade(prompt) == "1" else "FALSE")
            return "let me think about it" if asked <= garbage else valid
        replies = {
            "judgement": "Judgement: " + _grade(prompt),
            "flaky": "Judgement: " + _grade(prompt),
            "sleepy": "Judgement: 1",
            "equivalence": "## Equivalence Judgement\n" + ("TRUE" if _grade(prompt) == "1" else "FALSE"),
            "grader": "{score: 0.3}",
            "subgoal": "The sub-goal is to open settings. Score: 7",
            "rambling": "Hard to say, it depends.",
        }
        return replies[model]


def _grade(prompt: str) -> str:
    """A judge that really compares: reads the last reference and prediction lines our templates write
    (the few-shot examples come first)."""
    refs = re.findall(r"(?:\[Standard Answer\]:|Standard answer:|Reference answer:\n)[ \t]*(.*)", prompt)
    preds = re.findall(r"(?:\[Model Answer\]:|Model's answer:|Student answer:\n)[ \t]*(.*)", prompt)
    same = refs and preds and refs[-1].strip().lower() == preds[-1].strip().lower()
    return "1" if same else "0"


@pytest.fixture(scope="module")
def server():
    with JudgeServer() as srv:
        yield srv


def cfg(server, model, tmp_path, **kw):
    return JudgeConfig(base_url=server.url, model=model, cache_path=str(tmp_path / "judge.sqlite"), **kw)


def test_grades_batches_and_caches(server, tmp_path):
    items = [JudgeItem("What colour?", "red", "Red"), JudgeItem("What colour?", "blue", "red")] + \
        [JudgeItem("q", f"p{i}", f"p{i}") for i in range(10)]
    config = cfg(server, "judgement", tmp_path, max_workers=4)
    before = server.requests["judgement"]
    first = judge(items, config, "deepeyes")
    assert [v.score for v in first] == [1.0, 0.0] + [1.0] * 10
    assert all(v.status == "ok" and not v.cached for v in first)
    assert server.requests["judgement"] - before == 12
    second = judge(items, config, "deepeyes")
    assert [v.score for v in second] == [v.score for v in first]
    assert all(v.cached for v in second)
    assert server.requests["judgement"] - before == 12  # the second call made no request
    # another reference is another question to the judge
    judge([JudgeItem("What colour?", "red", "green")], config, "deepeyes")
    assert server.requests["judgement"] - before == 13


def test_request_shape_and_api_key(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test")
    judge([JudgeItem("q", "a", "a")], cfg(server, "judgement", tmp_path, api_key_env="MY_JUDGE_KEY", seed=7,
                                         temperature=0.3), "deepeyes")
    body, headers = server.bodies[-1], server.headers_seen[-1]
    assert body["temperature"] == 0.3 and body["seed"] == 7 and body["messages"][0]["role"] == "system"
    assert "[Model Answer]: a" in body["messages"][1]["content"]
    assert headers["authorization"] == "Bearer sk-test"


def test_timeout_is_a_failure_after_retries(server, tmp_path):
    before = server.requests["sleepy"]
    slow = cfg(server, "sleepy", tmp_path, timeout=0.3, retries=1)
    [v] = judge([JudgeItem("q", "a", "a")], slow)
    assert v.status == "failed" and v.score is None
    assert server.requests["sleepy"] - before == 2  # first try + one retry
    # failures are not cached: the next call asks again
    judge([JudgeItem("q", "a", "a")], cfg(server, "sleepy", tmp_path, timeout=0.3, retries=0))
    assert server.requests["sleepy"] - before == 3


def test_a_batch_is_asked_at_once_even_from_a_running_event_loop(server, tmp_path):
    # four answers that take 1.5 s each come back together: the requests were in flight at once
    items = [JudgeItem("q", f"a{i}", "a") for i in range(4)]
    config = JudgeConfig(base_url=server.url, model="sleepy", max_workers=4, cache_path="")

    async def from_a_notebook():  # a caller that already runs a loop (Jupyter, an async trainer)
        return judge(items, config, "deepeyes")

    start = time.monotonic()
    verdicts = asyncio.run(from_a_notebook())
    assert [v.status for v in verdicts] == ["ok"] * 4 and time.monotonic() - start < 4


def test_malformed_response_is_a_failure_without_retry(server, tmp_path):
    before = server.requests["malformed"]
    [v] = judge([JudgeItem("q", "a", "a")], cfg(server, "malformed", tmp_path, retries=3))
    assert v.status == "failed" and "malformed" in v.reply
    assert server.requests["malformed"] - before == 1


def test_server_error_is_retried(server, tmp_path):
    flaky = cfg(server, "flaky", tmp_path, retries=2)
    [v] = judge([JudgeItem("q", "yes", "yes")], flaky, "deepeyes")
    assert v.status == "ok" and v.score == 1.0 and server.requests["flaky"] == 2


def test_unreachable_server_and_length_guard(tmp_path, server):
    config = JudgeConfig(base_url="http://127.0.0.1:9/v1", cache_path="", timeout=0.5, retries=0)
    [v] = judge([JudgeItem("q", "a", "a")], config)
    assert v.status == "failed"
    before = sum(server.requests.values())
    [v] = judge([JudgeItem("q", "x" * 1001, "a")], cfg(server, "judgement", tmp_path, max_answer_chars=1000))
    assert (v.status, v.score) == ("too_long", 0.0)
    assert sum(server.requests.values()) == before


# ---------------------------------------------------- rewards against their sources: the judge's part
def test_an_unparseable_reply_is_asked_again_as_each_method_does(server, tmp_path):
    # GRIT's code asks up to 3 times; the first reply is garbage, the second a score
    judge_cfg = cfg(server, "garbage_once", tmp_path)
    assert grit.grit_gpt_score(["<answer>five</answer>"], answer=["5"], judge=judge_cfg) == [1.0]
    assert server.per_prompt["garbage_once", server.bodies[-1]["messages"][-1]["content"]] == 2
    # DeepEyes' geoguessr branch asks up to 8 times: 7 garbage replies, then TRUE
    eq = cfg(server, "garbage_7", tmp_path)
    out = deepeyes.deepeyes(["<think>x</think><answer>Paris</answer>"], answer=["paris"],
                            data_source=["geoguessr"], judge=eq)
    assert out == [pytest.approx(0.8)]
    # a seeded judge gets another seed on each re-ask, so it can sample another reply
    seeds = [b["seed"] for b in server.bodies if b["model"] == "garbage_7"]
    assert seeds == list(range(8))


def test_an_unparseable_reply_is_not_cached(server, tmp_path):
    config = cfg(server, "garbage_once", tmp_path)
    item = JudgeItem("Which city?", "Rome", "rome")
    [first] = judge([item], config)  # one ask only: the garbage stands for this call
    assert first.status == "unparseable"
    [second] = judge([item], config)  # not a cached 0 for the rest of the run: asked again
    assert (second.status, second.score, second.cached) == ("ok", 1.0, False)
    [third] = judge([item], config)
    assert third.cached and third.score == 1.0


def test_the_length_guard_is_deepeyes_own_not_every_judges(server, tmp_path):
    long_answer = "five " * 240  # 1,200 characters
    grader = cfg(server, "grader", tmp_path)
    before = server.requests["grader"]
    # GRIT has no length guard: the answer is judged (0.3 -> binarised to 1)
    assert grit.grit_gpt_score([f"<answer>{long_answer}</answer>"], answer=["5"], judge=grader) == [1.0]
    assert server.requests["grader"] == before + 1
    # DeepEyes keeps its own: acc 0 and a format error, without asking
    before = server.requests["judgement"]
    out = deepeyes.deepeyes([f"<answer>{long_answer}</answer>"], answer=["5"], data_source=["vstar"],
                            judge=cfg(server, "judgement", tmp_path))
    assert out == [pytest.approx(-0.2)] and server.requests["judgement"] == before


def test_grit_ovd_rows_are_not_sent_to_the_judge(server, tmp_path):
    grader = cfg(server, "grader", tmp_path)
    before = server.requests["grader"]
    out = grit.grit_gpt_score(["<answer>a box</answer>"] * 2, answer=["x", "x"],
                              source=["ovd_position", "gqa"], judge=grader)
    assert out == [0.0, 1.0]
    assert server.requests["grader"] == before + 1  # the GQA row only


def test_unusable_cache_path_does_not_stop_judging(server, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    config = JudgeConfig(base_url=server.url, model="judgement", cache_path=str(blocker / "judge.sqlite"))
    [v] = judge([JudgeItem("q", "same", "same")], config, "deepeyes")
    assert (v.status, v.score) == ("ok", 1.0)


def test_unparseable_reply_scores_zero_and_is_counted(server, tmp_path):
    seen = {}
    out = accuracy.llm_judge(["<answer>a</answer>"], answer=["a"], judge=cfg(server, "rambling", tmp_path),
                             log_metric=lambda k, v: seen.__setitem__(k, v))
    assert out == [0.0]
    assert seen["llm_judge/judge_unparseable"] == 1.0


PARSE_TABLE = [
    ("Judgement: 1", "judgement_01", 1.0), ("Judgement: 0", "judgement_01", 0.0), ("1", "judgement_01", 1.0),
    ("Judgement: maybe", "judgement_01", None), ("yes", "judgement_01", None),
    ("## Equivalence Judgement\nTRUE", "true_false", 1.0), ("false", "true_false", 0.0),
    ("TRUE or FALSE", "true_false", None),
    ("{score: 0.8}", "grit_score", 0.8), ('{"score": 1}', "grit_score", 1.0), ("score: 7", "grit_score", 1.0),
    ("no number", "grit_score", None),
    ("Score: 7", "score_10", 0.7), ("8", "score_10", 0.8), ("Score: 12", "score_10", 1.0),
    ("none", "score_10", None),
]


@pytest.mark.parametrize("reply,rule,expected", PARSE_TABLE)
def test_parse_reply_table(reply, rule, expected):
    assert parse_reply(reply, rule) == expected


def test_config_from_a_recipe_mapping():
    assert as_judge_config({"base_url": "http://127.0.0.1:1/v1", "model": "m"}).model == "m"
    with pytest.raises(RecipeError):
        as_judge_config({"base_url": "http://x/v1", "modle": "m"})
    with pytest.raises(RecipeError):
        JudgeConfig()  # neither an endpoint nor a local model


# ------------------------------------------------------------------------- rewards through a judge
def test_accuracy_and_deepeyes_with_a_judge(server, tmp_path):
    judge_cfg = {"base_url": server.url, "model": "judgement", "cache_path": str(tmp_path / "c.sqlite")}
    # the offline rule would fail "it is red" vs "The umbrella is red"; the judge's template is used
    out = accuracy.accuracy(["<answer>red</answer>", "<answer>blue</answer>"], answer=["red", "red"],
                            judge=judge_cfg, template="deepeyes")
    assert out == [1.0, 0.0]
    img = "<|vision_start|><|image_pad|><|vision_end|>"
    comp = f"<think>z</think><tool_call>{{}}</tool_call>{img}<think>r</think><answer>Red</answer>"
    out = deepeyes.deepeyes([comp], answer=["red"], data_source=["vstar"], judge=judge_cfg)
    assert out == [pytest.approx(2.0)]
    eq = {**judge_cfg, "model": "equivalence"}
    out = deepeyes.deepeyes(["<think>x</think><answer>Paris</answer>"], answer=["paris"],
                            data_source=["geoguessr"], judge=eq)
    assert out == [pytest.approx(0.8)]
    # math branch: math-verify decides first, the judge only sees its misses
    before = server.requests["equivalence"]
    out = deepeyes.deepeyes([r"<think>t</think>\boxed{1/2}"], answer=["0.5"],
                            data_source=["thinklite_eureka"], judge=eq)
    assert out == [pytest.approx(1.2)]
    assert server.requests["equivalence"] == before


def test_grit_binarises_the_judge_score(server, tmp_path):
    judge_cfg = JudgeConfig(base_url=server.url, model="grader", cache_path=str(tmp_path / "g.sqlite"))
    # the judge says 0.3; GRIT's trainer turns any score > 0 into 1
    assert grit.grit_gpt_score(["<answer>five</answer>"], answer=["5"], judge=judge_cfg) == [1.0]
    out = grit.grit(["<answer>five</answer>"], answer=["5"], judge=judge_cfg, variant="paper")
    assert out == [pytest.approx(1.0)]  # gpt 1 + nothing else (no tags, BLEU 0)


def test_infigui_subgoal_from_a_judge(server, tmp_path):
    g = {"width": 100, "height": 100, "goal": "wifi", "instruction": "open settings",
         "action": {"action": "click", "coordinate": [50, 50]}}
    comp = '<think>I should open settings</think>{"action": "click", "coordinate": [95, 5]}'
    judge_cfg = JudgeConfig(base_url=server.url, model="subgoal", cache_path=str(tmp_path / "s.sqlite"))
    # wrong place: R_acc = 0.2 · type 1 + 0.2 · 7/10 = 0.34; total 0.1 + 0.9 · 0.34
    out = infigui.infigui([comp], gui=[g], coord_frame="pixel", judge=judge_cfg)
    assert out == [pytest.approx(0.1 + 0.9 * 0.34)]
    assert "I should open settings" in server.bodies[-1]["messages"][1]["content"]


def test_a_lone_surrogate_costs_its_own_row_only(server, tmp_path):
    # decoding sampled tokens can leave half a UTF-16 pair; the rest of the batch keeps its scores
    judge_cfg = {"base_url": server.url, "model": "judgement", "cache_path": str(tmp_path / "s.sqlite")}
    comps = ["<answer>red</answer>", "<answer>re\ud800d</answer>", "<answer>blue</answer>",
             "<answer>red</answer>"]
    out = accuracy.llm_judge(comps, answer=["red"] * 4, judge=judge_cfg, template="deepeyes")
    assert out == [1.0, 0.0, 0.0, 1.0]
    assert any("re\ufffdd" in json.dumps(b, ensure_ascii=False) for b in server.bodies)  # sent readable
    # the cache took the batch too: asking again sends nothing
    before = server.requests["judgement"]
    assert accuracy.llm_judge(comps, answer=["red"] * 4, judge=judge_cfg, template="deepeyes") == out
    assert server.requests["judgement"] == before
