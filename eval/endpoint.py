"""An OpenAI-compatible chat endpoint as the evaluated model (vLLM, SGLang, TGI, a hosted API):

    mmreason eval --endpoint http://127.0.0.1:8000/v1 --model Qwen2.5-VL-7B-Instruct --family qwen2_5_vl \\
        --data downloads/ScreenSpot-v2 --task screenspot_v2

Each prompt goes out as one chat request (greedy: temperature 0, the run's seed, the task's token budget)
through the `openai` client, as the judge's requests do (`rewards.judge.chat_completion`: its retries,
timeouts and errors). Pictures are sent already resized to the evaluation's pixel budget by the family's
rule (`modalities.image.load_image`), as PNG data URLs: the server's own resize then keeps them as they
are (sides multiples of the patch factor, within its budget), so the frame the model's coordinates are read
in is the one recorded per sample, as for a local checkpoint. ``--family`` names that frame.

Single-turn tasks on images and text only: a tool task (its loop runs our tools between turns) or a video
row is refused before any request, naming the task or the sample.
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.schema import IMAGE_TYPES


def _picture_part(part: Mapping[str, Any], family: str, media: Mapping[str, Mapping[str, Any]],
                  sample_id: object) -> tuple[dict, dict]:
    """An image part as an ``image_url`` data URL at the evaluation's budget, and its frame."""
    from mmreason.eval.tasks import part_budget
    from mmreason.families import get_family
    from mmreason.modalities.image import load_image

    lo, hi = part_budget(part, get_family(family), media, sample_id=sample_id)
    loaded = load_image(part[part["type"]], family, min_pixels=lo, max_pixels=hi, sample_id=sample_id)
    buf = io.BytesIO()
    loaded.image.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    f = loaded.frame
    frame = {"width": f.width, "height": f.height, "resized_width": f.resized_width,
             "resized_height": f.resized_height}
    return {"type": "image_url", "image_url": {"url": url}}, frame


def chat_messages(prompt: Mapping[str, Any], family: str,
                  media: Mapping[str, Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """A prompt's messages in the chat-completions layout, and the frames of its pictures in order."""
    out, frames = [], []
    for message in prompt["messages"]:
        parts = []
        for part in message["content"]:
            if part["type"] == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif part["type"] in IMAGE_TYPES:
                sent, frame = _picture_part(part, family, media, prompt["id"])
                parts.append(sent)
                frames.append(frame)
            else:
                raise RecipeError(f"sample {prompt['id']!r}: an endpoint model takes text and pictures; this "
                                  f"row holds a {part['type']} part")
        out.append({"role": message["role"], "content": parts})
    return out, frames


class EndpointModel:
    """The evaluated model behind an OpenAI-compatible ``base_url``, serving ``name``; `family` decides the
    frame its coordinates are read in."""

    def __init__(self, base_url: str, name: str, family: str, *, api_key_env: str | None = None,
                 timeout: float = 600.0, retries: int = 2):
        from mmreason.families import get_family

        get_family(family)  # an unknown family stops here, naming the known ones
        self.base_url, self.name, self.family = base_url.rstrip("/"), name, family
        self.api_key_env, self.timeout, self.retries = api_key_env, timeout, retries
        self.budgets: dict[str, dict[str, int]] = {}  # no processor config to read: the family's budget

    def record(self) -> dict:
        return {"endpoint": self.base_url, "spec": self.name, "family": self.family}

    def check_task(self, task: Any, name: str) -> None:
        """Refuse, before any work, a task whose loop runs our tools between turns."""
        if task.tools or task.call_syntax != "tool_call":
            raise RecipeError(f"task {name!r} runs a tool loop between turns; an endpoint model takes "
                              "single-turn tasks only")

    def _config(self, max_tokens: int, seed: int):
        from mmreason.rewards.judge import JudgeConfig

        return JudgeConfig(base_url=self.base_url, model=self.name, api_key_env=self.api_key_env,
                           temperature=0.0, max_tokens=max_tokens, seed=seed, timeout=self.timeout,
                           retries=self.retries, cache_path="")

    def generate(self, prompts: Sequence[Mapping[str, Any]], task: Any, setup: Any, *, progress: bool = True,
                 on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
        """One request per prompt, a batch's requests in flight together; outputs as `generation.generate`'s."""
        from mmreason.eval.run_setup import in_batches
        from mmreason.rewards.judge import JudgeFailure, chat_completion

        self.check_task(task, setup.task)
        for prompt in prompts:  # before any request: a part the endpoint cannot take stops the run here
            for message in prompt["messages"]:
                for part in message["content"]:
                    if part["type"] != "text" and part["type"] not in IMAGE_TYPES:
                        raise RecipeError(f"sample {prompt['id']!r}: an endpoint model takes text and "
                                          f"pictures; this row holds a {part['type']} part")
        g = setup.generation
        config = self._config(g.max_new_tokens, g.seed)

        def ask(prompt: Mapping[str, Any]) -> dict:  # pictures encoded per request, not all held at once
            sample = prompt["id"]
            messages, frames = chat_messages(prompt, setup.family, setup.media)
            try:
                text = chat_completion(config, messages)
            except JudgeFailure as exc:
                raise RecipeError(f"--endpoint {self.base_url} (model {self.name!r}) failed on sample "
                                  f"{sample!r}: {exc}. Scored samples are kept: the same command continues")
            return {"id": sample, "output": text, "stop_reason": "endpoint", "num_tool_calls": 0,
                    "image_frames": frames}

        with ThreadPoolExecutor(max_workers=g.batch_size) as pool:
            return in_batches(prompts, setup, lambda batch: list(pool.map(ask, batch)), progress=progress,
                              on_batch=on_batch)


__all__ = ["EndpointModel", "chat_messages"]
