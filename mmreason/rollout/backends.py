"""Generation backends of rollouts: continue a batch of token sequences, vision tensors included.

Backends implement `RolloutBackend.generate(inputs, params) -> token ids`: `HFBackend` (``model.generate``,
the default, CPU-capable, tested; it keeps each trajectory's key/value cache across turns unless
``cache=False``) and `VLLMBackend` (optional extra ``mmreason[vllm]``; a colocated
``vllm.LLM`` or an OpenAI-compatible server; untested here, as no GPU is available to the test suite).
A backend may run past a stop; `mmreason.rollout.loop` cuts each turn at its first stop or end-of-turn.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Protocol, Sequence

from mmreason.families import Family, as_family
from mmreason.rollout.cache import TurnCache, cache_unsupported
from mmreason.rollout.tokens import TOKEN_TYPES, concat_vision
from mmreason.rollout.video_com import line_stopper

__all__ = [
    "GenerationParams", "HFBackend", "RolloutBackend", "TurnInput", "VLLMBackend", "collapse_placeholders",
]


@dataclass(frozen=True)
class TurnInput:
    """One sequence to continue: its token ids (placeholders expanded), the processor's vision tensors of
    each segment in order, and the raw pictures/clips (for engines that run their own processor)."""

    ids: tuple[int, ...]
    vision: tuple[Mapping[str, Any], ...]
    images: tuple[Any, ...] = ()
    videos: tuple[Any, ...] = ()
    token_types: tuple[int, ...] | None = None  # `mm_token_type_ids`, for the families that need them
    key: Hashable | None = None  # the trajectory it continues: backends that keep a cache across turns use it


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    stop_strings: tuple[str, ...] = ()
    eos_ids: tuple[int, ...] = ()
    forbidden_ids: tuple[int, ...] = ()  # vision placeholders: never generated
    seeds: tuple[int, ...] | None = None  # per sequence, for engines with per-request seeds
    # Regexes ending a sequence after a matching complete line (`RolloutConfig.stop_lines`). HF stops on them;
    # engines that cannot (vLLM) run on to a stop string, an end-of-turn token or the limit, and the rollout cuts.
    stop_lines: tuple[str, ...] = ()


class RolloutBackend(Protocol):
    """Continues a batch of sequences. A backend may also define ``release()``, which `rollout` calls when
    it starts and when it ends, to drop state kept across turns (a cache is stale once weights change)."""

    def generate(self, inputs: Sequence[TurnInput], params: GenerationParams) -> list[list[int]]:
        """New token ids per input; may run past a stop (the rollout cuts at the first stop or eos)."""


class HFBackend:
    """``model.generate`` on one left-padded batch, vision tensors concatenated in sequence order.

    With ``cache=True`` (the default) the keys and values of each trajectory are kept across turns
    (`mmreason.rollout.cache`): a turn encodes only what is new since the trajectory's last one. Greedy
    decoding picks the same tokens either way; ``cache=False`` re-encodes every turn's whole sequence (for
    comparison, or for a model the cache cannot serve, which falls back to it by itself: `cache_reason`).
    `release` frees the kept cache; `rollout` calls it when it starts and when it ends.
    """

    def __init__(self, model: Any, processor: Any, family: str | Family, *, cache: bool = True):
        self.model, self.processor = model, processor
        self.family = as_family(family)
        self.cache_reason = cache_unsupported(model) if cache else "cache=False"
        self.turn_cache = TurnCache(model) if self.cache_reason is None else None

    def release(self) -> None:
        """Free the keys and values kept across turns (the next call starts afresh)."""
        if self.turn_cache is not None:
            self.turn_cache.reset()

    def generate(self, inputs: Sequence[TurnInput], params: GenerationParams) -> list[list[int]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from mmreason.modalities.guards import forbid_placeholder_tokens

        tok = self.processor.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else params.eos_ids[0]
        device = self.model.device
        kwargs = self.turn_cache.prepare(inputs, pad) if self.turn_cache is not None else None
        cached = kwargs is not None
        if not cached:
            kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                      for k, v in _left_padded(inputs, pad).items()}
        length = kwargs["input_ids"].shape[1]
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=params.do_sample, pad_token_id=pad,
            eos_token_id=list(params.eos_ids), stop_strings=list(params.stop_strings) or None,
            **({"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k or 0}
               if params.do_sample else {}),
        )
        # The collator's guard: a generated placeholder would crash mRoPE on the training forward.
        processors = forbid_placeholder_tokens(self.processor, self.family, device=device) if params.forbidden_ids \
            else LogitsProcessorList()
        stopping = [line_stopper(tok, params.stop_lines, length)] if params.stop_lines else []
        try:
            with torch.inference_mode():
                out = self.model.generate(**kwargs, generation_config=config, logits_processor=processors,
                                          tokenizer=tok, stopping_criteria=stopping or None)
        except BaseException:
            self.release()  # a half-written cache is never continued
            raise
        new = out[:, length:]
        if cached:
            self.turn_cache.record(new)
        return [row.tolist() for row in new.cpu()]


def _left_padded(inputs: Sequence[TurnInput], pad: int) -> dict[str, Any]:
    """Whole sequences in one left-padded batch (every sequence continues at the same column), with the
    vision tensors of every segment concatenated in order: what an uncached turn feeds ``generate``."""
    import torch

    length = max(len(x.ids) for x in inputs)
    ids = torch.full((len(inputs), length), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    types = torch.zeros_like(ids) if all(x.token_types is not None for x in inputs) else None
    for b, x in enumerate(inputs):
        ids[b, length - len(x.ids):] = torch.tensor(x.ids, dtype=torch.long)
        attention[b, length - len(x.ids):] = 1
        if types is not None:
            types[b, length - len(x.ids):] = torch.tensor(x.token_types, dtype=torch.long)
    out = {"input_ids": ids, "attention_mask": attention, **concat_vision([v for x in inputs for v in x.vision])}
    if types is not None:
        out[TOKEN_TYPES] = types
    return out


def collapse_placeholders(ids: Sequence[int], placeholder_ids: Sequence[int]) -> list[int]:
    """Expanded ids -> the template's form (one placeholder per picture), which engines expand themselves.

    >>> collapse_placeholders([1, 9, 9, 9, 2, 9, 9, 3], [9])
    [1, 9, 2, 9, 3]
    """
    keep, out = set(placeholder_ids), []
    for t in ids:
        if not (out and t in keep and out[-1] == t):
            out.append(t)
    return out


class VLLMBackend:
    """vLLM generation: ``mode="colocate"`` runs a `vllm.LLM` in this process (pass `llm`, or `model` and
    engine keyword arguments); ``mode="server"`` posts token ids to an OpenAI-compatible ``/v1/completions``
    endpoint at `server_url` (text-only turns: that API carries no pictures; use colocate for vision).

    Pictures reach vLLM already sized by the family rule, so its processor keeps their size and the
    token sequence matches the one the trainer rebuilds. Qwen3-VL clips (timestamps between frames) are
    not supported here.
    """

    def __init__(self, processor: Any, family: str | Family, *, model: str | None = None, mode: str = "colocate",
                 llm: Any = None, server_url: str | None = None, served_model: str | None = None,
                 timeout: float = 600.0, **engine_kwargs: Any):
        if mode not in ("colocate", "server"):
            raise ValueError(f"vLLM mode must be 'colocate' or 'server', got {mode!r}")
        self.processor, self.mode, self.timeout = processor, mode, timeout
        self.family = as_family(family)
        self.server_url, self.served_model = (server_url or "").rstrip("/"), served_model or model
        self.llm = llm
        if mode == "colocate" and llm is None:
            if model is None:
                raise ValueError("colocated vLLM needs `model` (a checkpoint path) or an `llm`")
            self.llm = _vllm().LLM(model=model, **engine_kwargs)
        if mode == "server" and not self.server_url:
            raise ValueError("vLLM server mode needs server_url, e.g. http://127.0.0.1:8000")

    def _placeholders(self) -> list[int]:
        from mmreason.modalities.guards import token_id

        return [token_id(self.processor, t) for t in self.family.placeholder_tokens]

    def generate(self, inputs: Sequence[TurnInput], params: GenerationParams) -> list[list[int]]:
        prompts = [collapse_placeholders(x.ids, self._placeholders()) for x in inputs]
        if self.mode == "server":
            if any(x.images or x.videos for x in inputs):
                raise ValueError("vLLM server mode sends token ids to /v1/completions, which carries no pictures; "
                                 "use mode='colocate' for rollouts with images or videos")
            return [self._post(p, params, None if params.seeds is None else params.seeds[i])
                    for i, p in enumerate(prompts)]
        vllm = _vllm()
        requests, sampling = [], []
        for i, (x, p) in enumerate(zip(inputs, prompts)):
            media = {k: list(v) for k, v in (("image", x.images), ("video", [c.frames for c in x.videos])) if v}
            requests.append({"prompt_token_ids": p, **({"multi_modal_data": media} if media else {})})
            seed = None if params.seeds is None else params.seeds[i]
            sampling.append(vllm.SamplingParams(**self._sampling(params, seed)))
        outs = self.llm.generate(requests, sampling, use_tqdm=False)
        return [list(o.outputs[0].token_ids) for o in outs]

    @staticmethod
    def _sampling(params: GenerationParams, seed: int | None) -> dict:
        return dict(
            n=1, max_tokens=params.max_new_tokens, temperature=params.temperature if params.do_sample else 0.0,
            top_p=params.top_p, top_k=params.top_k or -1, stop=list(params.stop_strings),
            include_stop_str_in_output=True, stop_token_ids=list(params.eos_ids), skip_special_tokens=False,
            logit_bias={t: -100.0 for t in params.forbidden_ids} or None, seed=seed,
        )

    def _post(self, prompt: list[int], params: GenerationParams, seed: int | None) -> list[int]:
        body = {k: v for k, v in self._sampling(params, seed).items() if v is not None and k != "n"}
        body.update(model=self.served_model, prompt=prompt, return_token_ids=True)
        if body.get("logit_bias"):
            body["logit_bias"] = {str(k): v for k, v in body["logit_bias"].items()}
        request = urllib.request.Request(f"{self.server_url}/v1/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            choice = json.loads(response.read())["choices"][0]
        if choice.get("token_ids") is None:
            raise ValueError(f"{self.server_url} returned no token ids; a vLLM server >= 0.10.2 returns them "
                             "when asked (return_token_ids)")
        return [int(t) for t in choice["token_ids"]]


def _vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError("the vLLM rollout backend needs vllm: pip install 'mmreason[vllm]'") from exc
    return vllm
