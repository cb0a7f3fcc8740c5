"""LLM-as-judge: grade a predicted answer against a reference with a chat model.

Two backends behind one config: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, SGLang,
TGI, llama.cpp, OpenAI itself) spoken through the `openai` client (its timeouts, retries with backoff and
async requests: a batch goes out at once, ``max_workers`` in flight), or a local Hugging Face checkpoint.
Replies are cached on disk (sqlite) by the sha256 of (template, question, prediction, reference, model),
so a re-run of the same rollouts costs nothing.

The judge never raises on model output or on a failing server: every item gets a :class:`Verdict`
whose ``status`` says what happened. The rule for a score is

- ``ok``           the reply was parsed; ``score`` is in [0, 1];
- ``too_long``     the prediction exceeded ``max_answer_chars``: score 0 without asking (off unless the
                   config sets it; DeepEyes' 1,000-character guard lives in its reward, GRIT has none);
- ``unparseable``  the server answered but no reply fits a rule of the template, after ``attempts``
                   asks (a method's own count: GRIT's code asks 3 times, DeepEyes' geoguessr branch 8):
                   score None. Only parsed replies are cached, so a later call asks again;
- ``failed``       timeout, network error, HTTP error or a malformed response body after the
                   retries: score None.

Rewards that use a judge count a None as incorrect (0) and log the share of such items, which is what
the methods' released code does when their judge call fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.rewards._common import readable_text

log = logging.getLogger("mmreason.rewards.judge")


# ------------------------------------------------------------------------------------ templates
@dataclass(frozen=True)
class Template:
    """A judge prompt: ``system`` and ``user`` are ``str.format`` strings over
    ``{question}``, ``{reference}``, ``{prediction}``, ``{context}``; ``parse`` names a rule in
    ``PARSERS``."""

    system: str
    user: str
    parse: str


_DEEPEYES_EXAMPLES = """\
[Question]: What colour is the umbrella held by the woman?
[Standard Answer]: The umbrella is red.
[Model Answer]: red
Judgement: 1

[Question]: Is the clock above or below the window?
[Standard Answer]: The clock is above the window.
[Model Answer]: It hangs over the window.
Judgement: 1

[Question]: How many birds sit on the wire?
[Standard Answer]: Three birds.
[Model Answer]: 4
Judgement: 0

[Question]: Is the door open?
[Standard Answer]: No, the door is closed.
[Model Answer]: Yes, it is open.
Judgement: 0
"""

TEMPLATES: dict[str, Template] = {
    # Generic semantic equivalence, answered TRUE/FALSE (also DeepEyes' geoguessr / math fallback rule).
    "equivalence": Template(
        system="You grade answers. Be strict: an answer that is almost right is wrong.",
        user=(
            "Decide whether the student's answer means the same as the reference answer to the question, "
            "allowing different wording or notation.\n\nQuestion:\n{question}\n\n"
            "Reference answer:\n{reference}\n\nStudent answer:\n{prediction}\n\n"
            "Reply with one word: TRUE if they are equivalent, FALSE otherwise."
        ),
        parse="true_false",
    ),
    # DeepEyes (vl_agent): consistency of a short answer with the standard answer, few-shot, "Judgement: 1/0".
    "deepeyes": Template(
        system="You are a helpful assistant.",
        user=(
            "You will see a question, its standard answer and the answer extracted from a model's output. "
            "Decide whether the model answer is consistent with the standard answer: it is consistent when "
            "it says essentially the same thing, even in other words. Output 'Judgement: 1' if consistent "
            "and 'Judgement: 0' if not, and nothing else.\n\n"
            + _DEEPEYES_EXAMPLES.replace("{", "{{").replace("}", "}}")
            + "\n[Question]: {question}\n[Standard Answer]: {reference}\n[Model Answer]: {prediction}\n"
            "Judgement:"
        ),
        parse="judgement_01",
    ),
    # verl's DeepEyes recipe (recipe/deepeyes/deepeyes.py): strict equivalence, two examples, one word
    # CORRECT/INCORRECT (the recipe asks at temperature 0.1: set it in the judge config).
    "deepeyes_verl": Template(
        system=("You judge whether a model's answer means the same as a standard answer to a question. Be "
                "strict: it is correct only if it carries the full meaning of the standard answer. Reply "
                "with a single word, CORRECT or INCORRECT, and nothing else."),
        user=(
            "Judge the model's answer.\n\nExample:\n[Question]: Is the mug white or black?\n"
            "[Standard Answer]: The mug is white.\n[Model's Answer]: white\n[Your Judgement]: CORRECT\n\n"
            "Example:\n[Question]: Is the car both red and parked?\n[Standard Answer]: Yes, it is red and "
            "parked.\n[Model's Answer]: No.\n[Your Judgement]: INCORRECT\n\nTask:\n[Question]: {question}\n"
            "[Standard Answer]: {reference}\n[Model's Answer]: {prediction}\n[Your Judgement]:"
        ),
        parse="correct_incorrect",
    ),
    # GRIT: "proofread" the answer against the standard one and give a graded score in [0, 1].
    "grit_proofread": Template(
        system="You are a careful grader.",
        user=(
            "Grade the model's answer to the question by comparing it with the standard answer. The score "
            "runs from 0 (unrelated or wrong) to 1 (matches the standard answer); the closer the answer, the "
            "higher the score. Reply only with JSON of the form {{score: <score>}}.\nQuestion: {question}\n"
            "Standard answer: {reference}\nModel's answer: {prediction}"
        ),
        parse="grit_score",
    ),
    # InfiGUI-R1 sub-goal guidance: extract the step's sub-goal from the reasoning and rate it 1-10.
    "infigui_subgoal": Template(
        system="You evaluate the plans of a phone-operating agent.",
        user=(
            "Below is an agent's reasoning for one step of a task, and the reference instruction for that "
            "step.\nFirst identify the sub-goal the agent intends to achieve in this step. Then rate how "
            "well it matches the reference instruction in meaning, from 1 (unrelated) to 10 (same intent). "
            "If no sub-goal can be identified, the score is 0.\n\nTask: {question}\n\n"
            "Agent reasoning:\n{prediction}\n\nReference step instruction: {reference}\n\n"
            "Reply in the form 'Score: <integer>'."
        ),
        parse="score_10",
    ),
}


def _parse_true_false(text: str) -> float | None:
    # Look only after the report heading when there is one; TRUE xor FALSE decides.
    tail = text.split("## Equivalence Judgement")[-1].lower()
    has_true, has_false = "true" in tail, "false" in tail
    if has_true != has_false:
        return 1.0 if has_true else 0.0
    return None


def _parse_judgement_01(text: str) -> float | None:
    # DeepEyes' rule: after "Judgement:", a '1' anywhere means consistent, else a '0' means not;
    # without the label the whole reply must be exactly "1" or "0".
    text = text.strip()
    if "Judgement:" in text:
        tail = text.split("Judgement:")[-1]
        if "1" in tail:
            return 1.0
        if "0" in tail:
            return 0.0
        return None
    return {"1": 1.0, "0": 0.0}.get(text)


def _parse_correct_incorrect(text: str) -> float | None:
    # the verl recipe's rule: the word CORRECT (any case) wins, else INCORRECT; \b keeps them apart
    if re.search(r"\bcorrect\b", text, flags=re.IGNORECASE):
        return 1.0
    if re.search(r"\bincorrect\b", text, flags=re.IGNORECASE):
        return 0.0
    return None


def _parse_grit_score(text: str) -> float | None:
    # GRIT's rule: lower-case, drop punctuation except '.', take the five characters after the last
    # "score", keep digits and dots, read a float. Clamped to [0, 1].
    cleaned = re.sub(r"[^\w\s.]", "", text.strip().lower())
    digits = re.sub(r"[^\d.]", "", cleaned.split("score")[-1][:5])
    try:
        value = float(digits)
    except ValueError:
        return None
    return min(1.0, max(0.0, value))


def _parse_score_10(text: str) -> float | None:
    match = re.search(r"score\s*[:=]?\s*(\d+(?:\.\d+)?)", text, flags=re.IGNORECASE)
    if match is None:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*", text)
    if match is None:
        return None
    return min(10.0, max(0.0, float(match.group(1)))) / 10.0


PARSERS = {
    "true_false": _parse_true_false,
    "judgement_01": _parse_judgement_01,
    "correct_incorrect": _parse_correct_incorrect,
    "grit_score": _parse_grit_score,
    "score_10": _parse_score_10,
}


def parse_reply(text: object, rule: str) -> float | None:
    """Turn a judge reply into a score in [0, 1] by a named rule; None when the reply fits no rule.

    >>> parse_reply("Judgement: 1", "judgement_01"), parse_reply("{score: 0.8}", "grit_score")
    (1.0, 0.8)
    >>> parse_reply("Score: 7", "score_10"), parse_reply("maybe", "true_false") is None
    (0.7, True)
    """
    if not isinstance(text, str):
        return None
    try:
        return PARSERS[rule](text)
    except (ValueError, OverflowError):
        return None


# --------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask. Exactly one of ``base_url`` (an OpenAI-compatible server, e.g.
    ``http://127.0.0.1:8000/v1``) and ``hf_model`` (a local checkpoint directory) is set.

    ``api_key_env`` names an environment variable holding the key (keys never go in recipes). ``timeout``
    (seconds) and ``retries`` go to the `openai` client, which owns the backoff between tries;
    ``max_workers`` requests of a batch are in flight at once.
    ``cache_path=None`` uses ``$MMREASON_CACHE_DIR/judge.sqlite`` (default ``~/.cache/mmreason``);
    ``cache_path=""`` disables the cache. ``max_answer_chars`` (None: no guard) scores a longer prediction 0
    without asking; a method that has such a guard sets it in its reward, not here.
    """

    base_url: str | None = None
    model: str = "judge"
    hf_model: str | None = None
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int = 64
    seed: int | None = 0
    timeout: float = 30.0
    retries: int = 2
    max_workers: int = 8
    cache_path: str | None = None
    max_answer_chars: int | None = None

    def __post_init__(self):
        if (self.base_url is None) == (self.hf_model is None):
            raise RecipeError("judge: set exactly one of base_url (HTTP endpoint) and hf_model "
                              "(local checkpoint)")
        if self.timeout <= 0 or self.retries < 0 or self.max_workers < 1:
            raise RecipeError("judge: timeout must be > 0, retries >= 0, max_workers >= 1")
        if self.max_answer_chars is not None and self.max_answer_chars < 1:
            raise RecipeError("judge: max_answer_chars must be >= 1 or None (no guard)")
        if self.base_url is not None:
            _openai_installed()  # when the recipe is read, not at the first judged step

    @property
    def model_id(self) -> str:
        return self.hf_model if self.hf_model is not None else f"{self.base_url}#{self.model}"


def as_judge_config(value: object) -> JudgeConfig | None:
    """Accept a JudgeConfig, a mapping from a YAML recipe, or None (no judge: rule-based fallback)."""
    if value is None or isinstance(value, JudgeConfig):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(JudgeConfig)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise RecipeError(f"judge: unknown keys {unknown}; known: {sorted(known)}")
        return JudgeConfig(**dict(value))
    raise RecipeError(f"judge: expected a mapping or JudgeConfig, got {type(value).__name__}")


@dataclass(frozen=True)
class JudgeItem:
    question: str
    prediction: str
    reference: str
    context: str = ""


@dataclass(frozen=True)
class Verdict:
    score: float | None
    status: str  # ok | too_long | unparseable | failed
    reply: str | None = None
    cached: bool = False


# ---------------------------------------------------------------------------------------- cache
def _cache_file(config: JudgeConfig) -> Path | None:
    if config.cache_path == "":
        return None
    if config.cache_path is not None:
        return Path(config.cache_path)
    root = os.environ.get("MMREASON_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "mmreason")
    return Path(root) / "judge.sqlite"


@contextmanager
def _connect(path: Path):
    """A connection that commits on success and is always closed (sqlite3's own context only commits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
            yield conn
    finally:
        conn.close()


def cache_key(template: Template, item: JudgeItem, config: JudgeConfig) -> str:
    payload = [template.system, template.user, template.parse, item.question, item.prediction, item.reference,
               item.context, config.model_id, config.temperature, config.max_tokens, config.seed]
    # surrogatepass: a lone surrogate in a completion must give a key, not an error for the whole batch
    text = json.dumps(payload, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _cache_get(path: Path | None, keys: Sequence[str]) -> dict[str, str]:
    if path is None or not keys or not path.exists():
        return {}
    try:
        with _connect(path) as conn:
            out: dict[str, str] = {}
            for lo in range(0, len(keys), 500):
                chunk = list(keys[lo:lo + 500])
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, reply FROM verdicts WHERE key IN ({marks})"
                out.update(conn.execute(query, chunk).fetchall())
            return out
    except (sqlite3.Error, OSError) as exc:
        log.warning("judge cache %s unreadable (%s); asking again", path, exc)
        return {}


def _cache_put(path: Path | None, rows: Sequence[tuple[str, str]]) -> None:
    if path is None or not rows:
        return
    try:
        with _connect(path) as conn:
            conn.executemany("INSERT OR REPLACE INTO verdicts (key, reply) VALUES (?, ?)", rows)
    except (sqlite3.Error, OSError) as exc:
        log.warning("judge cache %s not written (%s)", path, exc)


# ------------------------------------------------------------------------------------- backends
class JudgeFailure(Exception):
    """A request that did not produce a reply (`judge` turns it into a ``failed`` verdict)."""


def _openai_installed() -> None:
    import importlib.util

    if importlib.util.find_spec("openai") is None:
        raise RecipeError("judge: an OpenAI-compatible endpoint (base_url) is spoken through the `openai` "
                          "client, which is not installed: pip install 'mmreason[judge]'")


def _openai():
    _openai_installed()
    import openai

    return openai


def _client_options(config: JudgeConfig) -> dict[str, Any]:
    # A server without keys ignores the header; the client insists on some key, so "EMPTY" (vLLM's usage).
    key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
    return {"base_url": config.base_url, "api_key": key or "EMPTY", "timeout": config.timeout,
            "max_retries": config.retries}


def _request(config: JudgeConfig, messages: list[dict]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": config.model, "messages": messages, "temperature": config.temperature,
                            "max_tokens": config.max_tokens}
    if config.seed is not None:
        body["seed"] = config.seed
    return body


def _failure(exc: Exception) -> JudgeFailure:
    """What went wrong, worded for `train.preflight`'s hints (``HTTP 404``, ``malformed response``)."""
    openai = _openai()
    if isinstance(exc, openai.APIStatusError):
        return JudgeFailure(f"HTTP {exc.status_code}")
    if isinstance(exc, ValueError):  # a 200 whose body is not JSON
        return JudgeFailure(f"malformed response: {exc}")
    return JudgeFailure(f"{type(exc).__name__}: {exc}")


def _reply_text(completion: Any) -> str:
    # the client does not validate bodies: a JSON object that is no chat completion comes with None fields
    try:
        content = completion.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        raise JudgeFailure(f"malformed response: {str(completion)[:200]}") from None
    if not isinstance(content, str):
        raise JudgeFailure(f"malformed response: content is {type(content).__name__}")
    return content


def chat_completion(config: JudgeConfig, messages: list[dict]) -> str:
    """The reply text of one request to the OpenAI-compatible endpoint ``config.base_url``.

    Sends ``{model, messages, temperature, max_tokens[, seed]}`` from `config` through the `openai` client
    (messages may hold ``image_url`` parts if the server takes them), with the key from the environment
    variable ``config.api_key_env`` when it is set. The client retries timeouts, connection errors, HTTP
    408/409/429 and 5xx ``config.retries`` times with exponential backoff; other HTTP errors, a body that is
    not a chat completion, and retries run out raise :class:`JudgeFailure`. Used by `judge` (one request at a
    time for a check; `judge` itself batches) and by data builders that ask a teacher model.
    """
    openai = _openai()
    try:
        with openai.OpenAI(**_client_options(config)) as client:
            completion = client.chat.completions.create(**_request(config, messages))
    except (openai.APIError, ValueError) as exc:
        raise _failure(exc) from None
    return _reply_text(completion)


async def _chat_async(client: Any, config: JudgeConfig, messages: list[dict]) -> str:
    openai = _openai()
    try:
        completion = await client.chat.completions.create(**_request(config, messages))
    except (openai.APIError, ValueError) as exc:
        raise _failure(exc) from None
    return _reply_text(completion)


def ask_once(config: JudgeConfig) -> str:
    """One real request to the judge (`chat_completion`, or the local model): how a trainer checks, before
    its first step, that the judge answers. Raises what the backend raises (`JudgeFailure` for a server)."""
    probe = [{"role": "user", "content": "Reply with the single word OK."}]
    return chat_completion(config, probe) if config.base_url is not None else _hf_chat(config, probe)


_HF_MODELS: dict[str, tuple[Any, Any]] = {}
_HF_LOCK = threading.Lock()


def _hf_model(path: str) -> tuple[Any, Any]:
    with _HF_LOCK:
        if path not in _HF_MODELS:
            import transformers

            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            try:
                model = transformers.AutoModelForCausalLM.from_pretrained(path)
            except ValueError:  # a VLM checkpoint: its text path answers text-only prompts
                model = transformers.AutoModelForImageTextToText.from_pretrained(path)
            _HF_MODELS[path] = (tokenizer, model.eval())
        return _HF_MODELS[path]


def _hf_chat(config: JudgeConfig, messages: list[dict]) -> str:
    import torch

    tokenizer, model = _hf_model(config.hf_model)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    with _HF_LOCK, torch.inference_mode():  # one generate at a time: a CPU model gains nothing from threads
        do_sample = config.temperature > 0
        if config.seed is not None:
            torch.manual_seed(config.seed)
        out = model.generate(**ids, max_new_tokens=config.max_tokens, do_sample=do_sample,
                             temperature=config.temperature if do_sample else None,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def render_messages(template: Template, item: JudgeItem) -> list[dict]:
    # what the judge reads must be encodable: a lone surrogate becomes U+FFFD
    values = {"question": readable_text(item.question), "prediction": readable_text(item.prediction),
              "reference": readable_text(item.reference), "context": readable_text(item.context)}
    return [{"role": "system", "content": template.system.format(**values)},
            {"role": "user", "content": template.user.format(**values)}]


# ----------------------------------------------------------------------------------------- entry
def judge(items: Sequence[JudgeItem], config: JudgeConfig, template: str | Template = "equivalence", *,
          attempts: int = 1, max_answer_chars: int | None = None) -> list[Verdict]:
    """Grade every item; one verdict per item, in order, never raising.

    An unparseable reply is asked again, up to ``attempts`` asks in all (each re-ask with the seed moved
    on by one, so a seeded server can sample another reply). ``max_answer_chars`` (else the config's)
    scores a longer prediction 0 without asking.

    >>> judge([JudgeItem("q", "x" * 2000, "y")], JudgeConfig(base_url="http://127.0.0.1:9/v1"),
    ...       max_answer_chars=1000)[0].status
    'too_long'
    """
    if attempts < 1:
        raise RecipeError(f"judge: attempts must be >= 1, got {attempts}")
    tpl = TEMPLATES[template] if isinstance(template, str) else template
    limit = max_answer_chars if max_answer_chars is not None else config.max_answer_chars
    verdicts: list[Verdict | None] = [None] * len(items)
    keys: dict[int, str] = {}
    for i, item in enumerate(items):
        if limit is not None and len(item.prediction) > limit:
            verdicts[i] = Verdict(0.0, "too_long")
        else:
            keys[i] = cache_key(tpl, item, config)
    path = _cache_file(config)
    hits = _cache_get(path, sorted(set(keys.values())))
    todo: dict[str, list[int]] = {}
    for i, key in keys.items():
        cached = _verdict(hits[key], tpl, cached=True) if key in hits else None
        if cached is not None and cached.status == "ok":  # an unparseable reply cached earlier is asked again
            verdicts[i] = cached
        else:
            todo.setdefault(key, []).append(i)

    fresh = []
    pending = list(todo)
    for attempt in range(attempts):
        again = []
        asks = [(key, render_messages(tpl, items[todo[key][0]])) for key in pending]
        for key, reply, error in _ask_all(config, asks, attempt):
            if reply is None:  # transport failures were retried by the client already
                log.warning("judge request failed: %s", error)
                verdict = Verdict(None, "failed", error)
            else:
                verdict = _verdict(reply, tpl, cached=False)
                if verdict.status == "ok":
                    fresh.append((key, reply))
                elif attempt + 1 < attempts:
                    again.append(key)
                    continue
            for i in todo[key]:
                verdicts[i] = verdict
        pending = again
        if not pending:
            break
    _cache_put(path, fresh)
    return [v if v is not None else Verdict(None, "failed") for v in verdicts]


Asked = tuple[str, str | None, str]  # (cache key, reply or None, what failed)


def _ask_all(config: JudgeConfig, asks: Sequence[tuple[str, list[dict]]], attempt: int) -> list[Asked]:
    """One reply per (key, messages), in order; a failure is (key, None, error), never an exception. Re-asks
    (``attempt`` > 0) move a seeded judge's seed on by ``attempt``, so it can sample another reply."""
    if attempt and config.seed is not None:
        config = replace(config, seed=config.seed + attempt)
    if not asks:
        return []
    if config.base_url is None:  # the local model answers one at a time anyway (see `_hf_chat`)
        return [_guarded(key, lambda m=messages: _hf_chat(config, m)) for key, messages in asks]
    return _run(_ask_server(config, asks))


def _guarded(key: str, ask: Any) -> Asked:
    try:
        return key, ask(), ""
    except JudgeFailure as exc:
        return key, None, str(exc)
    except Exception as exc:  # a backend bug must not stop training
        return key, None, f"{type(exc).__name__}: {exc}"


async def _ask_server(config: JudgeConfig, asks: Sequence[tuple[str, list[dict]]]) -> list[Asked]:
    """Every request at once through one async client, at most ``config.max_workers`` in flight."""
    openai = _openai()
    slots = asyncio.Semaphore(config.max_workers)
    async with openai.AsyncOpenAI(**_client_options(config)) as client:

        async def one(key: str, messages: list[dict]) -> Asked:
            async with slots:
                try:
                    return key, await _chat_async(client, config, messages), ""
                except JudgeFailure as exc:
                    return key, None, str(exc)
                except Exception as exc:  # a client bug must not stop training
                    return key, None, f"{type(exc).__name__}: {exc}"

        return list(await asyncio.gather(*(one(key, messages) for key, messages in asks)))


def _run(coro: Any) -> Any:
    """`asyncio.run`, also when the caller already runs an event loop (a notebook, an async trainer): the
    batch then runs on a thread of its own, since a running loop cannot be re-entered."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _verdict(reply: str, tpl: Template, *, cached: bool) -> Verdict:
    score = parse_reply(reply, tpl.parse)
    return Verdict(score, "ok" if score is not None else "unparseable", reply, cached)


def verdict_metrics(verdicts: Sequence[Verdict]) -> dict[str, float]:
    """Shares of each status and of cache hits, for ``log_metric``."""
    n = max(1, len(verdicts))
    out = {f"judge_{s}": sum(v.status == s for v in verdicts) / n
           for s in ("failed", "unparseable", "too_long")}
    out["judge_cached"] = sum(v.cached for v in verdicts) / n
    return out
