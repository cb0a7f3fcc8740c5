"""lmms-eval model classes for mmreason checkpoints: every lmms-eval task runs on a local checkpoint of a
supported family, generated through `mmreason eval`'s own path (`generation.generate`: the family's chat
template, the collator, the pixel budget, and for a checkpoint trained with tools the multi-turn rollout
loop with those tools executed).

    lmms-eval --model mmreason --model_args pretrained=outputs/grpo/final --tasks mme,pope --log_samples
    lmms-eval --model mmreason --model_args pretrained=base:qwen2_5_vl,max_pixels=50176,tools=none \\
        --tasks my_task --include_path my_tasks/
    lmms-eval --model mmreason --force_simple --model_args pretrained=ckpt/ --tasks seedbench_ppl

lmms-eval 0.7 finds them through the ``lmms_eval.models`` entry-point group (pyproject.toml names
`manifest`). ``--model mmreason`` is the chat class (`MMReasonLMM`, ``is_simple = False``): each request's
messages come from the task's ``doc_to_messages`` (or its ``doc_to_visual`` + ``doc_to_text``), media as
lmms-eval hands them over (PIL images, video paths, audio arrays); it runs ``generate_until`` and
``generate_until_multi_round`` tasks. lmms-eval sends loglikelihood requests (``multiple_choice`` tasks)
only to simple models: with ``--force_simple`` it takes the simple class
(`mmreason.eval.lmms_eval_simple.MMReasonSimpleLMM`), which runs those and generation tasks too.

Multi-round tasks (``output_type: generate_until_multi_round``) follow lmms-eval's round protocol: round
0 is the doc's messages, round k is what the task builds from the outputs of rounds 0..k-1
(``round_idx``, ``previous_output``, ``previous_round_info``), until the task says terminal; every round is
one generation through the rollout loop, so a checkpoint with tools runs them inside each round. The
outputs the task sees, and lmms-eval gets, are per round what ``output`` returns.

Model args (``--model_args k=v,...``): ``pretrained`` (a checkpoint folder, ``tiny:<family>`` or
``base:<family>``); ``tools`` (``+``-separated tool names, ``none``; default: the tools of the recipe
saved beside the weights, ``recipe.yaml``); ``prompt`` (a `mmreason.prompts` style, ``none``; default:
the saved recipe's prompt, so a model is asked the way it learned); ``max_turns``; ``max_new_tokens``
(per turn, when the task sets none); ``min_pixels``/``max_pixels``/``fps`` (default: the checkpoint
processor's budget, as `mmreason eval`); ``output`` (``answer``: the ``<answer>`` block when there is one,
else the output without its ``<think>`` blocks; ``full``: the whole trajectory); ``max_rounds`` (a
multi-round task still asking after this many rounds is an error; default 32); ``dtype``, ``device``,
``batch_size``. Decoding is greedy, as `mmreason eval`; a task asking for sampling is warned about.
``until`` stop strings are not applied (lmms-eval's own chat backends ignore them too).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lmms_eval.api.instance import GenerationResult, TokenCounts
from lmms_eval.api.model import lmms

from mmreason.errors import RecipeError
from mmreason.families import get_family
from mmreason.schema import EXTENSION_TYPES, text_of

log = logging.getLogger(__name__)

MODEL_ID = "mmreason"
OUTPUTS = ("answer", "full")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def manifest():
    """The entry point lmms-eval 0.7 loads (group ``lmms_eval.models``): ``--model mmreason`` is the chat
    class, ``--model mmreason --force_simple`` the simple one (the one lmms-eval sends loglikelihood)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, chat_class_path=f"{__name__}.MMReasonLMM",
                         simple_class_path="mmreason.eval.lmms_eval_simple.MMReasonSimpleLMM")


def saved_recipe(path: Path) -> Any:
    """The recipe saved beside a trained checkpoint's weights, or None (a tiny model, a downloaded one)."""
    from mmreason.config import load_recipe

    return load_recipe(path / "recipe.yaml") if (path / "recipe.yaml").is_file() else None


def resolve_pretrained(pretrained: str) -> tuple[Path, str]:
    """(checkpoint folder, family) of ``pretrained=``; a missing folder or a model type no family has is a
    `RecipeError` naming the value."""
    from mmreason.models import detect_family, resolve_checkpoint

    try:
        path = resolve_checkpoint(pretrained)
        return path, detect_family(path)
    except (RecipeError, ValueError, FileNotFoundError) as exc:
        raise RecipeError(f"lmms-eval model {MODEL_ID}: pretrained={pretrained}: {exc}") from None


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    text = str(value).strip()
    return () if text in ("", "none") else tuple(n for n in text.split("+") if n)


class CheckpointLMM(lmms):
    """A checkpoint of a supported family as an lmms-eval model (module doc for the arguments): what the
    chat class and the simple one (`lmms_eval_simple`) share."""

    def __init__(self, pretrained: str, tools: str | None = None, prompt: str | None = None, max_turns: int = 5,
                 max_new_tokens: int = 512, min_pixels: int | None = None, max_pixels: int | None = None,
                 fps: float | None = None, output: str = "answer", dtype: str = "auto", device: str | None = None,
                 batch_size: int | str = 1, max_batch_size: int | None = None, seed: int = 0,
                 max_rounds: int = 32) -> None:
        super().__init__()
        from mmreason.eval.run_setup import checkpoint_budgets, make_setup
        from mmreason.eval.tasks import Task
        from mmreason.models import load
        from mmreason.prompts import prompt_style
        from mmreason.tools import resolve_tools

        if output not in OUTPUTS:
            raise RecipeError(f"lmms-eval model {MODEL_ID}: output={output!r}; known: {', '.join(OUTPUTS)}")
        if not str(max_rounds).isdigit() or int(max_rounds) < 1:
            raise RecipeError(f"lmms-eval model {MODEL_ID}: max_rounds={max_rounds!r}; a whole number >= 1")
        self.path, self.family = resolve_pretrained(str(pretrained))
        recipe = saved_recipe(self.path)
        self.tools = _names(tools)
        if self.tools is None:
            self.tools = tuple(recipe.tools.names) if recipe else ()
        resolve_tools(self.tools)  # an unknown tool name fails here, not at the first request
        data = recipe.data if recipe else None
        if prompt is None and data is not None:
            self.style = prompt_style(data.prompt, system=data.system_prompt, prefix=data.prompt_prefix,
                                      suffix=data.prompt_suffix)
        else:
            self.style = prompt_style(prompt or "none")
        self.output = output
        self.task = Task(f"lmms-eval requests on {self.path}", row_tasks=(), prompt="", metrics={},
                         reference="the lmms-eval task's own prompt and metrics", tools=self.tools,
                         tool_frame=recipe.tools.coord_frame if recipe else None,
                         call_syntax=recipe.tools.call_syntax if recipe else "tool_call",
                         max_turns=int(max_turns), max_new_tokens=int(max_new_tokens))
        args = argparse.Namespace(min_pixels=_int(min_pixels), max_pixels=_int(max_pixels),
                                  fps=None if fps is None else float(fps), judge=None, max_new_tokens=None,
                                  max_turns=None, batch_size=int(batch_size), seed=int(seed), limit=None,
                                  segment_seconds=None, coord_frame=None)
        self.setup = make_setup(self.task, MODEL_ID, self.family, args, checkpoint=checkpoint_budgets(self.path))
        self.model, self.processor = load({"path": str(self.path), "dtype": dtype, "device": device})
        self.model.eval()
        self.batch_size = int(batch_size)
        self.max_rounds = int(max_rounds)
        # A task's text never holds a picture: the family's placeholder and span tokens written in it (an
        # earlier round's whole trajectory, output=full, quoted back) would be read as media slots.
        fam = get_family(self.family)
        marks = [*fam.placeholder_tokens, fam.vision_start, fam.vision_end, fam.audio_start, fam.audio_end]
        self._media_tokens = re.compile("|".join(re.escape(m) for m in marks if m))
        self._warned_sampling = False

    # ------------------------------------------------------------------------------------ requests
    def messages(self, chat: Sequence[dict], styled: bool = True) -> list[dict]:
        """lmms-eval's chat messages as canonical mmreason messages, the checkpoint's prompt style and tool
        declarations applied (a model only calls the tools it is told about) unless not `styled`."""
        from lmms_eval.protocol import ChatMessages

        from mmreason.prompts import apply_prompt
        from mmreason.tools import tools_prompt

        hf = ChatMessages(messages=list(chat)).to_hf_messages()
        for message in hf:
            for part in message["content"]:
                if part.get("type") == "text":
                    part["text"] = self._media_tokens.sub("", part["text"])
        if not styled:
            return hf
        tools_text = tools_prompt(list(self.tools)) if self.tools else ""
        messages = apply_prompt({"messages": hf}, self.style, tools_text=tools_text)["messages"]
        # A system turn's text parts are read as the chat templates render them: joined with nothing between.
        declared = any(m["role"] == "system" and tools_text in text_of(m) for m in messages)
        if tools_text and not declared:
            system = next((m for m in messages if m["role"] == "system"), None)
            if system is None:
                messages.insert(0, {"role": "system", "content": [{"type": "text", "text": tools_text}]})
            else:
                system["content"] = [{"type": "text", "text": (text_of(system) + "\n\n" + tools_text).strip()}]
        return messages

    def generate(self, asks: Sequence[tuple[list[dict], Mapping[str, Any], str]]) -> list[str]:
        """One returned text per ``(lmms-eval chat messages, generation kwargs, task name)``, in order;
        asks with the same token budget are generated together, each through our rollout loop (the
        checkpoint's tools run there)."""
        from dataclasses import replace

        from mmreason.eval.generation import generate

        prompts, budgets = [], []
        for i, (chat, gen_kwargs, task) in enumerate(asks):
            prompts.append({"id": str(i), "messages": self.messages(chat)})
            budgets.append(int(gen_kwargs.get("max_new_tokens") or self.task.max_new_tokens))
            if float(gen_kwargs.get("temperature") or 0) > 0 and not self._warned_sampling:
                log.warning("task %s asks for temperature %s; %s evaluates greedily", task,
                            gen_kwargs["temperature"], MODEL_ID)
                self._warned_sampling = True
        outputs: dict[str, str] = {}
        for budget in sorted(set(budgets)):
            setup = replace(self.setup, generation=replace(self.setup.generation, max_new_tokens=budget))
            group = [p for p, b in zip(prompts, budgets) if b == budget]
            for done in generate(self.model, self.processor, group, self.task, setup, progress=self.rank == 0):
                outputs[done["id"]] = done["output"]
        return [returned_text(outputs[p["id"]], self.output) for p in prompts]

    def rounds(self, requests: Sequence[Any], first: Callable[[int], list[dict]],
               following: Callable[[int, int, list[str], Any], tuple]) -> list[list[str]]:
        """lmms-eval's multi-round protocol, every request's round k generated in one go: `first(i)` is
        request i's first chat; `following(i, k, outputs, info)` asks the task for round k given the
        outputs so far and its own info from the round before, and answers ``(chat, terminal, round
        result, info)``. A request ends when its task says terminal (its round result, when the task
        gives one, is what lmms-eval gets, as lmms-eval's own backends return it) or answers no chat; a
        task still asking after ``max_rounds`` rounds is an error naming it."""
        outputs: list[list[str]] = [[] for _ in requests]
        finals: list[Any] = [None] * len(requests)
        infos: list[Any] = [None] * len(requests)
        live = {i: first(i) for i in range(len(requests))}
        round_idx = 0
        while live:
            if round_idx >= self.max_rounds:
                stuck = ", ".join(f"{requests[i].args[-2]} doc {requests[i].args[-3]}" for i in live)
                raise RecipeError(f"lmms-eval model {MODEL_ID}: the task still asks for a round after "
                                  f"max_rounds={self.max_rounds} ({stuck}); raise max_rounds= in --model_args")
            order = list(live)
            texts = self.generate([(live[i], _gen_kwargs(requests[i]), requests[i].args[-2]) for i in order])
            round_idx += 1
            going = {}
            for i, text in zip(order, texts):
                outputs[i].append(text)
                chat, terminal, result, infos[i] = following(i, round_idx, list(outputs[i]), infos[i])
                if terminal or chat is None:
                    finals[i] = result
                else:
                    going[i] = chat
            live = going
        return [list(final) if isinstance(final, (list, tuple)) else out for final, out in zip(finals, outputs)]

    def loglikelihood(self, requests: list) -> list[Likelihood]:
        """Per request ``(-log p(continuation | context, media), is_greedy)``, the log-probability summed
        over the continuation's tokens (`lmms_eval_likelihood`). The first number is returned NEGATED,
        as a loss: lmms-eval 0.7's multiple_choice scoring picks ``argmin`` over the choices (and divides
        by the choice's length for ``acc_norm``), written for backends that return a loss; a log-prob
        there would pick the least likely choice. The context is the task's own text after its media, the
        chat template applied, without the checkpoint's prompt style or tool declarations: the choice is
        scored as the assistant's first words, which a reasoning prompt would have start with <think>.
        Two lmms-eval 0.7 readings expect log-probs instead, and no task it ships uses them: ``perplexity``
        and ``acc_mutual_info`` (whose conditional / unconditional pairing is off anyway: it reads them
        interleaved, its requests list them one block after the other)."""
        from mmreason.eval.lmms_eval_likelihood import continuation_ids, prepare_context, score_continuation

        contexts: dict[tuple, Any] = {}
        out = []
        for request in requests:
            # (context, continuation or doc_to_target, doc_to_visual, doc_id, task, split); a multiple_choice
            # task scored by mutual information adds ("", choice) requests: the choice with no context
            args = tuple(request.args)
            ctx, target, doc_to_visual, doc_id, task, split = args + (None,) * (6 - len(args))
            doc = self.task_dict[task][split][doc_id] if task is not None else None
            continuation = target if isinstance(target, str) else str(target(doc))
            where = f"task {task} doc {doc_id}" if task is not None else "an unconditional choice"
            key = (task, split, doc_id, ctx)
            if key not in contexts:
                visuals = (doc_to_visual(doc) or []) if doc_to_visual is not None else []
                chat = user_turn(visuals, ctx)
                contexts[key] = prepare_context(self.processor, self.family, self.messages(chat, styled=False),
                                                media_options=self.setup.media, model=self.model, sample=where)
            ids = continuation_ids(self.processor.tokenizer, continuation)
            if not ids:
                raise RecipeError(f"lmms-eval model {MODEL_ID}: {where}: the continuation {continuation!r} "
                                  "has no tokens to score")
            scored = score_continuation(self.model, contexts[key], ids)
            out.append(Likelihood((-scored.logprob, scored.greedy),
                                  TokenCounts(input_tokens=len(contexts[key].ids) + len(ids), output_tokens=0)))
        return out


class Likelihood(GenerationResult):
    """One loglikelihood reply, ``(loss, is_greedy)`` in ``text``; it unpacks as that pair.

    Wrapped because lmms-eval 0.7.3's evaluator passes each reply through ``unwrap_generation_output``,
    which keeps a `GenerationResult`'s ``text`` as it is but turns a bare ``(float, bool)`` into its
    ``str()``, which its multiple_choice scoring then cannot unpack."""

    def __iter__(self):
        return iter(self.text)


class MMReasonLMM(CheckpointLMM):
    """A checkpoint as an lmms-eval chat model: generation tasks (``generate_until``, multi-round)."""

    is_simple = False

    def generate_until(self, requests: list) -> list[str]:
        """One output per request, in request order; the messages are the task's ``doc_to_messages``."""
        asks = []
        for request in requests:
            _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
            asks.append((doc_to_messages(self.task_dict[task][split][doc_id]), gen_kwargs or {}, task))
        return self.generate(asks)

    def generate_until_multi_round(self, requests: list) -> list[list[str]]:
        """Per request, its rounds' outputs: round 0 from ``doc_to_messages(doc)``, round k from
        ``doc_to_messages(doc, round_idx=k, previous_output=[outputs so far], previous_round_info=...)``
        (a tuple ``(messages, terminal, round result, info)``; lmms-eval builds it from a task's
        ``doc_to_text`` round protocol when the task has no ``doc_to_messages``), until terminal."""
        def doc(i: int) -> dict:
            _, _, _, doc_id, task, split = requests[i].args
            return self.task_dict[task][split][doc_id]

        def first(i: int) -> list[dict]:
            return requests[i].args[1](doc(i))

        def following(i: int, round_idx: int, outputs: list[str], info: Any) -> tuple:
            payload = requests[i].args[1](doc(i), round_idx=round_idx, previous_output=outputs,
                                          previous_round_info=info)
            if not (isinstance(payload, tuple) and len(payload) == 4):
                return None, True, None, info  # a task without the round protocol: one round
            return payload

        return self.rounds(requests, first, following)


def returned_text(completion: str, output: str = "answer") -> str:
    """What lmms-eval gets for a completion: all of it (``full``), or its ``<answer>`` (else ``\\boxed{}``,
    else ``FINAL_ANSWER:``) when it has one, else the completion without its ``<think>`` blocks.

    >>> returned_text("<think>red</think><answer>a red circle</answer>")
    'a red circle'
    >>> returned_text("<think>no tags</think> 42")
    '42'
    """
    from mmreason import traces

    if output == "full":
        return completion
    answer = traces.extract_answer(completion)
    return answer if answer is not None else _THINK.sub("", completion).strip()


def user_turn(visuals: Sequence[Any] | None, text: str) -> list[dict]:
    """A simple task's context as lmms-eval chat messages: one user turn with ``doc_to_visual``'s media
    (PIL images, video or audio paths, audio arrays). Where the text holds one ``<image>`` placeholder per
    medium (LLaVA's, which some task prompts carry) each goes where its placeholder is; otherwise any
    placeholder is dropped and the media go before the text, as lmms-eval's Qwen backends place them.

    >>> [p["type"] for p in user_turn(["a.png"], "Where is it?<image>")[0]["content"]]
    ['text', 'image']
    >>> [p.get("text") for p in user_turn(["a.png"], "<image> <image>Where?")[0]["content"]]
    [None, 'Where?']
    """
    media = [_visual_part(v) for v in visuals or []]
    pieces = text.split("<image>")
    if media and len(pieces) == len(media) + 1:
        content = [part for k, piece in enumerate(pieces)
                   for part in ([{"type": "text", "text": piece.strip()}] if piece.strip() else [])
                   + media[k:k + 1]]
    else:
        content = [*media, {"type": "text", "text": "".join(pieces).strip()}]
    return [{"role": "user", "content": content}]


def _visual_part(visual: Any) -> dict:
    if isinstance(visual, str):
        # lmms-eval hands over image, audio and video paths; a suffix the schema does not read as a picture
        # or a sound is a video (lmms-eval's video files come in more containers than the table lists)
        kind = EXTENSION_TYPES.get(Path(visual).suffix.lower())
        return {"type": kind if kind in ("image", "audio") else "video", "url": visual}
    if isinstance(visual, dict):  # lmms-eval's audio: {"array", "sampling_rate"}
        return {"type": "audio" if "array" in visual else visual.get("type", "video"), "url": visual}
    return {"type": "image", "url": visual}


def _gen_kwargs(request: Any) -> Mapping[str, Any]:
    """A generation request's kwargs: the argument after the context (chat) or the messages (simple)."""
    return next((a for a in request.args[1:3] if isinstance(a, dict)), {})


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
