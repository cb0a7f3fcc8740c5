"""The rollout backend a GRPO recipe asks for: HF `generate` (the default, no extra state) or a colocated vLLM
engine that is given the policy's new weights after every optimizer step.

A vLLM *server* cannot be used for training here: a plain OpenAI-compatible server has no way to receive
updated weights, so its samples would come from the starting policy (`check_vllm` refuses it before step 1).

The weight push follows the colocated-engine path TRL uses (each process has its own engine over its own
prompts); LoRA adapters are merged for the push and unmerged after. It needs a GPU and `vllm` and is not
exercised by the CPU test suite.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from mmreason.config import Recipe
from mmreason.errors import RecipeError


def check_vllm(recipe: Recipe) -> None:
    """Before anything loads: a vLLM recipe needs vllm installed and colocated mode."""
    g = recipe.grpo
    if g is None or g.rollout_backend != "vllm":
        return
    if g.vllm_mode == "server":
        raise RecipeError("grpo.vllm_mode=server: a vLLM server cannot receive the policy's updated weights, "
                          "so rollouts would sample the starting policy; use grpo.vllm_mode=colocate or "
                          "grpo.rollout_backend=hf")
    if importlib.util.find_spec("vllm") is None:
        raise RecipeError("grpo.rollout_backend=vllm needs vllm: pip install 'mmreason[vllm]' (GPU only), "
                          "or set grpo.rollout_backend=hf")


def make_backend(recipe: Recipe, processor: Any, path: str) -> Any:
    """None for HF generate (the rollout builds its own), else a colocated `VLLMBackend` on the checkpoint."""
    g = recipe.grpo
    if g.rollout_backend == "hf":
        return None
    from mmreason.rollout import VLLMBackend

    prompt = recipe.data.max_prompt_length
    return VLLMBackend(processor, recipe.model.family, model=path, mode="colocate", dtype=recipe.model.dtype,
                       gpu_memory_utilization=g.vllm_gpu_memory_utilization, enable_prefix_caching=True,
                       max_model_len=prompt + g.max_completion_length if prompt else None)


def _vllm_name(name: str) -> str:
    # peft wraps the model and its target layers: vLLM knows the plain checkpoint names
    return name.removeprefix("base_model.model.").replace(".base_layer.", ".")


def push_weights(backend: Any, policy: Any) -> None:
    """Copy the policy's current weights into the colocated engine (no-op for HF generate)."""
    if backend is None:
        return
    import torch

    engine_model = backend.llm.llm_engine.model_executor.driver_worker.model_runner.model
    merged = hasattr(policy, "merge_adapter")
    with torch.no_grad():
        if merged:
            policy.merge_adapter()
        try:
            engine_model.load_weights((_vllm_name(n), p.data) for n, p in policy.named_parameters()
                                      if "lora_" not in n)
        finally:
            if merged:
                policy.unmerge_adapter()
    backend.llm.reset_prefix_cache()
