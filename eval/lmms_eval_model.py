"""An lmms-eval model class for mmreason checkpoints: every lmms-eval task runs on a local checkpoint of a
supported family, generated through `mmreason eval`'s own path (`generation.generate`: the family's chat
template, the collator, the pixel budget, and for a checkpoint trained with tools the multi-turn rollout
loop with those tools executed).

    lmms-eval --model mmreason --model_args pretrained=outputs/grpo/final --tasks mme,pope --log_samples
    lmms-eval --model mmreason --model_args pretrained=base:qwen2_5_vl,max_pixels=50176,tools=none \\
        --tasks my_task --include_path my_tasks/

lmms-eval 0.7 finds it through the ``lmms_eval.models`` entry-point group (pyproject.toml names
`manifest`); it is a chat model (``is_simple = False``): each request's messages come from the task's
``doc_to_messages`` (or its ``doc_to_visual`` + ``doc_to_text``), media as lmms-eval hands them over (PIL
images, video paths, audio arrays).

Model args (``--model_args k=v,...``): ``pretrained`` (a checkpoint folder, ``tiny:<family>`` or
``base:<family>``); ``tools`` (``+``-separated tool names, ``none``; default: the tools of the recipe
saved beside the weights, ``recipe.yaml``); ``prompt`` (a `mmreason.prompts` style, ``none``; default:
the saved recipe's prompt, so a model is asked the way it learned); ``max_turns``; ``max_new_tokens``
(per turn, when the task sets none); ``min_pixels``/``max_pixels``/``fps`` (default: the checkpoint
processor's budget, as `mmreason eval`); ``output`` (``answer``: the ``<answer>`` block when there is one,
else the output without its ``<think>`` blocks; ``full``: the whole trajectory); ``dtype``, ``device``,
``batch_size``. Decoding is greedy, as `mmreason eval`; a task asking for sampling is warned about.
``until`` stop strings are not applied (lmms-eval's own chat backends ignore them too).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any, Sequence

from lmms_eval.api.model import lmms

from mmreason.errors import RecipeError

log = logging.getLogger(__name__)

MODEL_ID = "mmreason"
OUTPUTS = ("answer", "full")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def manifest():
    """The entry point lmms-eval 0.7 loads (group ``lmms_eval.models``): ``--model mmreason``."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, chat_class_path=f"{__name__}.MMReasonLMM")


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


class MMReasonLMM(lmms):
    """A checkpoint of a supported family as an lmms-eval chat model (module doc for the arguments)."""

    is_simple = False

    def __init__(self, pretrained: str, tools: str | None = None, prompt: str | None = None, max_turns: int = 5,
                 max_new_tokens: int = 512, min_pixels: int | None = None, max_pixels: int | None = None,
                 fps: float | None = None, output: str = "answer", dtype: str = "auto", device: str | None = None,
                 batch_size: int | str = 1, max_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        from mmreason.eval.run_setup import checkpoint_budgets, make_setup
        from mmreason.eval.tasks import Task
        from mmreason.models import load
        from mmreason.prompts import prompt_style
        from mmreason.tools import resolve_tools

        if output not in OUTPUTS:
            raise RecipeError(f"lmms-eval model {MODEL_ID}: output={output!r}; known: {', '.join(OUTPUTS)}")
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
        self._warned_sampling = False

    # ------------------------------------------------------------------------------------ requests
    def messages(self, chat: Sequence[dict]) -> list[dict]:
        """lmms-eval's chat messages as canonical mmreason messages, the checkpoint's prompt style and tool
        declarations applied (a model only calls the tools it is told about)."""
        from lmms_eval.protocol import ChatMessages

        from mmreason.prompts import apply_prompt
        from mmreason.tools import tools_prompt

        hf = ChatMessages(messages=list(chat)).to_hf_messages()
        tools_text = tools_prompt(list(self.tools)) if self.tools else ""
        messages = apply_prompt({"messages": hf}, self.style, tools_text=tools_text)["messages"]
        declared = any(m["role"] == "system" and tools_text in _text(m) for m in messages)
        if tools_text and not declared:
            system = next((m for m in messages if m["role"] == "system"), None)
            if system is None:
                messages.insert(0, {"role": "system", "content": [{"type": "text", "text": tools_text}]})
            else:
                system["content"] = [{"type": "text", "text": (_text(system) + "\n\n" + tools_text).strip()}]
        return messages

    def generate_until(self, requests: list) -> list[str]:
        """One output per request, in request order; requests with the same token budget go together."""
        from dataclasses import replace

        from mmreason.eval.generation import generate

        prompts, budgets = [], []
        for i, request in enumerate(requests):
            _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
            chat = doc_to_messages(self.task_dict[task][split][doc_id])
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

    def loglikelihood(self, requests: list) -> list:
        # lmms-eval 0.7 builds a chat model's requests in ChatTask.construct_requests, which admits generation
        # output types only (it asserts so), so loglikelihood / multiple_choice requests never reach this
        # class; the method exists because lmms' interface declares it.
        raise NotImplementedError(f"lmms-eval model {MODEL_ID} is a chat model: lmms-eval sends chat models "
                                  "generation requests only, not loglikelihood (multiple_choice)")

    def generate_until_multi_round(self, requests: list) -> list:
        raise NotImplementedError(f"lmms-eval model {MODEL_ID}: multi-round tasks are not supported; its own "
                                  "multi-turn loop runs the checkpoint's tools inside generate_until")


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


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text") or "" for p in content or [] if p.get("type") == "text")


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
