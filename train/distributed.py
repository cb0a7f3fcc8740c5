"""FSDP2 on CPU processes over gloo, and rollouts that sampling can desynchronise across processes.

`accelerate launch` with an FSDP config (``train/accelerate/fsdp_cpu_gloo_2proc.yaml``) exports
``ACCELERATE_USE_FSDP=true``, but accelerate 1.x only turns FSDP on for accelerator devices: with
``Accelerator(cpu=True)`` its ``PartialState._prepare_backend`` picks ``MULTI_CPU`` over gloo, and
``AcceleratorState.__init__`` switches to ``FSDP`` only inside its branch for ``MULTI_GPU``/``MULTI_XPU``/...
(accelerate/state.py), so the run would silently train as plain data parallel. PyTorch's FSDP2
(``fully_shard``) itself runs on CPU tensors with gloo collectives, so `enable_cpu_fsdp` sets the state
accelerate would have set on a GPU, before anything is prepared: the model is then sharded, checkpoints are
per-process shards, and the same code path as on GPUs is exercised without one. The GRPO loop calls it on
its accelerator, SFT's Trainer on the one it makes (`tests/e2e/test_fsdp.py` checks both against DDP).

`gathered_for_rollout`: under FSDP every forward all-gathers the parameters of each sharded block, a
collective every process must join. Sampling is not lockstep (one process's trajectories stop earlier, call a
tool more often, see other images), so forwards differ in number across processes and the gathers would
hang. The rollout therefore runs on parameters gathered once, and resharded after (the memory a DDP replica
holds anyway, for the rollout's duration).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator


def no_accelerator() -> bool:
    """True on a machine with no GPU or other accelerator: then several processes train on CPU over gloo (a
    trainer must say so: accelerate's state, asked without ``cpu=True`` there, runs every process alone)."""
    import torch
    from accelerate import utils

    others = ("is_xpu_available", "is_npu_available", "is_mps_available", "is_mlu_available",
              "is_hpu_available", "is_musa_available", "is_sdaa_available", "is_neuron_available")
    return not torch.cuda.is_available() and not any(getattr(utils, name, lambda: False)() for name in others)


def fsdp_requested() -> bool:
    """True when the launcher asked for FSDP (``accelerate launch`` with a ``distributed_type: FSDP`` config)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def enable_cpu_fsdp(accelerator: Any) -> bool:
    """Turn FSDP on for an accelerator that accelerate left at ``MULTI_CPU`` although FSDP was requested (see
    the module docstring). Call before `prepare`. Returns True when it did; a no-op elsewhere (GPUs, DDP)."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    if not fsdp_requested() or accelerator.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin()  # reads the FSDP_* settings the launcher exported
    if plugin.fsdp_version != 2:
        raise RuntimeError("FSDP on CPU processes needs fsdp_version: 2 (FSDP1 has no CPU path); set it in the "
                           "accelerate config")
    # Both shared states: an AcceleratorState made later (the Trainer makes several) copies PartialState's.
    accelerator.state.fsdp_plugin = plugin
    accelerator.state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return True


def fsdp_units(model: Any) -> list:
    """The FSDP2-sharded modules of `model`, outermost first (empty when it is not sharded)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        return []
    return [m for m in model.modules() if isinstance(m, FSDPModule)]


@contextlib.contextmanager
def gathered_for_rollout(model: Any, accelerator: Any = None) -> Iterator[None]:
    """Run the body on whole parameters: gathered once on every process, no collective inside, resharded
    on exit (the inner units then reshard after forward again as the `accelerator`'s FSDP config says). A
    no-op for a model that is not FSDP2-sharded."""
    units = fsdp_units(model)
    if not units:
        yield
        return
    plugin = getattr(getattr(accelerator, "state", None), "fsdp_plugin", None)
    reshard_after_forward = bool(getattr(plugin, "reshard_after_forward", True))
    # FSDP2 takes the first unit a forward runs through for the root; a rollout may first run an inner one
    # (the vision tower), which would then claim the root and fail the training forward. Settle it now.
    units[0]._get_fsdp_state()._lazy_init()
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(reshard_after_forward, recurse=False)
        # FSDP2 keeps the root unit unsharded after its forward (the backward needs it at once)
        units[0].set_reshard_after_forward(False, recurse=False)


def plain_state_dict(model: Any) -> dict:
    """Parameters and persistent buffers as plain tensors, read from the modules (`state_dict()` would go
    through FSDP2's hooks, which hand back the shards): inside `gathered_for_rollout`, the whole model."""
    state = {name: p.detach().clone() for name, p in model.named_parameters()}
    for prefix, module in model.named_modules():
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None and name not in module._non_persistent_buffers_set:
                state[f"{prefix}.{name}" if prefix else name] = buffer.detach().clone()
    return state


def save_sharded_pretrained(model: Any, out: Any, *, main: bool, merge_lora: bool = False,
                            adapter_out: Any = None) -> bool:
    """An FSDP2-sharded policy saved as a loadable model in `out` (LoRA merged in with `merge_lora`, the bare
    adapter also in `adapter_out`): the parameters are gathered on every process, then the main process
    writes them with no collective left to join (merging LoRA into sharded weights on one process alone
    would wait forever for the others). Every process must call it. False, writing nothing, when `model` is
    not sharded (the caller's own save applies)."""
    if not fsdp_units(model):
        return False
    with gathered_for_rollout(model):
        if main:
            if adapter_out is not None:
                model.save_pretrained(adapter_out, state_dict=plain_state_dict(model))
            if merge_lora:
                model = model.merge_and_unload()  # training is over: merged in place
            model.save_pretrained(out, state_dict=plain_state_dict(model))
    return True
