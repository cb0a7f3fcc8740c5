"""The experiments of `benchmarks/learning.py`: for each method, the data it builds, the recipes it trains
with (and the debug-size overrides, which the report names), the evaluations it runs, and the claim it tests.

Every model of an experiment is evaluated the same way: the SFT checkpoint is "before", each RL arm is
"after". A method with two RL arms (ViRL: step-level vs sequence-level credit) trains both from the same SFT
checkpoint at the same budget; a method with two evaluations (DeepEyes: with the zoom tool and with it
disabled) runs both on every model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASE = "base:qwen2_5_vl"  # the project's pretrained tiny base (models/tiny_base/)
IMAGE_PIXELS = 50176  # 64 merged tokens, the debug recipes' budget: a 2,000-4,000 px scene shrinks ~15x


@dataclass(frozen=True)
class Evaluation:
    task: str
    args: tuple[str, ...] = ()  # extra `mmreason eval` flags
    note: str = ""


@dataclass(frozen=True)
class Size:
    n_train: int
    n_heldout: int
    sft: tuple[str, ...]  # overrides of the SFT recipe at this size
    rl: tuple[str, ...]  # overrides of the RL recipe at this size


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    claim: str
    builder: str
    options: tuple[str, ...]  # `--set` values of the builder, both splits
    sft_recipe: str
    sft_overrides: tuple[str, ...]  # always applied: the tiny base, the method's trace format
    rl_recipe: str
    rl_overrides: tuple[str, ...]
    evaluations: dict[str, Evaluation]
    full: Size
    smoke: Size
    arms: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"rl": ()})  # RL arm -> its overrides
    rl_curves: tuple[str, ...] = ("reward",)  # metrics.jsonl keys the curves show


def as_eval_prompts(task: str) -> tuple[str, ...]:
    """Overrides that train on the instruction `mmreason eval --task <task>` pins after the question: a
    model trained on one wording and scored under another measures the wording, not the method."""
    import json

    from mmreason.eval.tasks import TASKS

    template = TASKS[task].prompt
    if not template.startswith("{question}") or template.count("{question}") != 1:
        raise ValueError(f"eval task {task!r}: its prompt is not the question followed by an instruction")
    return ("data.prompt=none", "data.prompt_suffix=" + json.dumps(template[len("{question}"):]))


SMOKE_SFT = ("sft.max_steps=2", "sft.batch_size=2", "sft.save_steps=2", "sft.logging_steps=1")
SMOKE_RL = ("grpo.max_steps=1", "grpo.num_generations=2", "grpo.batch_size=2", "grpo.save_steps=1",
            "grpo.logging_steps=1")
# SFT on the tiny base, full fine-tuning: the method recipes' debug twins train LoRA on a random model
FULL_FT = (f"model.path={BASE}", "model.family=qwen2_5_vl", "model.lora.enabled=false")


def _zoom_method(name: str, title: str, claim: str, rl_recipe: str, arms: dict, full_rl: tuple,
                 evaluations: dict, curves: tuple) -> Method:
    """DeepEyes and ViRL share the task: V*-like high-res scenes whose target (1-2 % of the long side) is
    a few pixels at the tiny model's budget, so its colour can be read only from a zoomed crop. Both train
    and evaluate with DeepEyes' prompt, the one the `vstar` eval task pins (the debug RL recipes set none,
    and ViRL's own prompt differs from the eval's only in its format line)."""
    return Method(
        name, title, claim, "image_scenes", ("trace=" + ("virl" if name == "virl" else "deepeyes"),
                                              'qtypes=["small_color"]', "highres_side=[2000,3000]"),
        "quickstart/qwen2_5_vl_sft",
        # the tool declared in the system turn, as the vstar eval and the RL recipes declare it
        ("data.prompt=deepeyes", "tools.names=[image_zoom_in_tool]", "tools.coord_frame=pixel",
         f"model.max_pixels={IMAGE_PIXELS}", "data.max_prompt_length=1024"),
        rl_recipe, ("data.prompt=deepeyes", f"model.max_pixels={IMAGE_PIXELS}"), evaluations,
        full=Size(96, 24, ("sft.epochs=2", "sft.batch_size=4", "sft.save_steps=1000"), full_rl),
        smoke=Size(4, 2, SMOKE_SFT, SMOKE_RL), arms=arms, rl_curves=curves)


_VSTAR = ("--max-pixels", str(IMAGE_PIXELS), "--max-new-tokens", "96")

METHODS: dict[str, Method] = {m.name: m for m in (
    _zoom_method(
        "deepeyes", "DeepEyes: the zoom tool against the same checkpoint with tools disabled",
        "accuracy with the zoom tool beats the same checkpoint with tools disabled; tool-call rate and accuracy "
        "rise during RL (arXiv 2505.14362, sections 4.2-4.3)",
        "debug/tiny_deepeyes_grpo", {"rl": ()},
        ("grpo.max_steps=10", "grpo.num_generations=4", "grpo.batch_size=2", "grpo.save_steps=10",
         "grpo.logging_steps=1", "grpo.max_completion_length=160"),
        {"tools": Evaluation("vstar", (*_VSTAR, "--max-turns", "3"), "zoom tool, up to 3 turns"),
         "no_tools": Evaluation("vstar", (*_VSTAR, "--max-turns", "1"),
                                "tools disabled: one turn, a tool call is not executed")},
        ("reward", "tool_calls_per_trajectory", "rewards/deepeyes")),
    _zoom_method(
        "virl", "ViRL: step-level against sequence-level credit at the same budget",
        "crediting each zoom's own tokens (correct / redundant / erroneous against the rationale regions) "
        "beats one sequence-level reward: more correct zooms and higher accuracy (arXiv 2511.23031, abstract)",
        "debug/tiny_virl_grpo",
        {"step_credit": ("grpo.step_rewards=true",), "sequence_credit": ("grpo.step_rewards=false",)},
        ("grpo.max_steps=10", "grpo.num_generations=4", "grpo.batch_size=2", "grpo.save_steps=10",
         "grpo.logging_steps=1", "grpo.max_completion_length=160"),
        {"tools": Evaluation("vstar", (*_VSTAR, "--max-turns", "3"), "zoom tool, up to 3 turns")},
        ("reward", "tool_calls_per_trajectory", "advantages/token_nonuniform_frac")),
    Method(
        "grit", "GRIT: grounded reasoning with GRPO-GR",
        "answer accuracy and the IoU of the boxes written in the trace rise after GRPO-GR; the grounded format "
        "rate holds (arXiv 2505.15879, section 4)",
        "image_scenes", ("trace=grit", 'qtypes=["count","relation"]'),
        "quickstart/qwen2_5_vl_sft", ("data.prompt=grit", f"model.max_pixels={IMAGE_PIXELS}", "sft.lr=1.0e-3"),
        "grit/tiny_grpo_20", (f"model.max_pixels={IMAGE_PIXELS}",),
        # a trace with three boxes is ~190 tokens of this tokenizer: the budgets leave room for it
        {"grit": Evaluation("grit", ("--max-pixels", str(IMAGE_PIXELS), "--max-new-tokens", "256"))},
        full=Size(1200, 200, ("sft.epochs=3", "sft.batch_size=4", "sft.save_steps=10000"),
                  ("grpo.max_steps=40", "grpo.save_steps=40", "grpo.logging_steps=2", "grpo.batch_size=2",
                   "grpo.max_completion_length=256", "grpo.lr=5.0e-5")),
        smoke=Size(4, 2, SMOKE_SFT, SMOKE_RL), rl_curves=("reward", "rewards/grit")),
    Method(
        "infigui_r1", "InfiGUI-R1: RLOO on GUI agent steps",
        "step success (action type and grounding) after RLOO beats the SFT checkpoint (arXiv 2504.14239, "
        "section 4)",
        "gui_pages", ('qtypes=["step"]', 'platforms=["mobile"]'),
        "infigui_r1/tiny_sft", FULL_FT + ("sft.lr=1.0e-3", "sft.scheduler=cosine"),
        "infigui_r1/tiny_rloo", ("data.prompt=infigui_r1", "grpo.lr=5.0e-5"),
        # -High (the goal, no step instruction) is the prompt the gui_pages step rows train with; a reasoned
        # step is ~160-250 tokens of this tokenizer; the screenshots at the recipes' pixel budget
        {"android_control_high": Evaluation("android_control_high", (
            "--max-new-tokens", "256", "--max-pixels", str(IMAGE_PIXELS)))},
        full=Size(200, 48, ("sft.epochs=4", "sft.batch_size=4", "sft.max_steps=null", "sft.save_steps=10000"),
                  ("grpo.max_steps=12", "grpo.num_generations=4", "grpo.batch_size=2", "grpo.save_steps=12",
                   "grpo.logging_steps=2", "grpo.max_completion_length=256")),
        smoke=Size(4, 2, SMOKE_SFT, SMOKE_RL), rl_curves=("reward", "rewards/infigui")),
    Method(
        "video_com", "Video-CoM: manipulations on video clips",
        "answer accuracy after GRPO with manipulations beats the SFT checkpoint (arXiv 2511.23477)",
        "video_clips", ('qtypes=["order","collide_color"]', "size=[64,48]", "duration=[2.0,2.0]", "fps=4"),
        "video_com/tiny_sft",
        FULL_FT + as_eval_prompts("video_com") + ("sft.lr=1.0e-3", "sft.scheduler=cosine"),
        # the eval's instruction takes the prompt of a clip with its frames past the debug base's 1024 tokens
        "video_com/tiny_grpo",
        as_eval_prompts("video_com") + ("grpo.lr=5.0e-5", "data.max_prompt_length=1536"),
        # a manipulation turn is up to ~85 tokens of this tokenizer
        {"video_com": Evaluation("video_com", ("--max-new-tokens", "96", "--max-turns", "3"))},
        full=Size(300, 48, ("sft.epochs=4", "sft.batch_size=4", "sft.max_steps=null", "sft.save_steps=10000"),
                  ("grpo.max_steps=24", "grpo.num_generations=4", "grpo.batch_size=4", "grpo.save_steps=24",
                   "grpo.logging_steps=2", "grpo.max_completion_length=96")),
        smoke=Size(4, 2, SMOKE_SFT, SMOKE_RL), rl_curves=("reward", "rewards/video_com")),
    Method(
        "gs_reasoner", "GS-Reasoner: 3D grounding from rendered views",
        "3D IoU of the named object's box after GRPO beats the SFT checkpoint (GS-Reasoner's GRPO stage is this "
        "project's extension: the paper trains by SFT; rendered-views path, no spatial adapter)",
        "scenes_3d", ('qtypes=["grounding_3d"]', "rgbd=true", "views=2", "num_points=8000", "view_size=[112,84]"),
        "gs_reasoner/tiny_sft", FULL_FT + as_eval_prompts("grounding_3d") + (
            "sft.lr=5.0e-4", "sft.lr_by_module={}", "sft.scheduler=cosine"),
        "gs_reasoner/tiny_grpo",
        as_eval_prompts("grounding_3d") + ("grpo.lr=5.0e-5", "model.lora.enabled=false"),
        # `<think></think><answer>name 1 <bbox>(six 4-decimal numbers)</bbox></answer>` is ~72 tokens
        {"grounding_3d": Evaluation("grounding_3d", ("--max-new-tokens", "96"))},
        full=Size(600, 200, ("sft.epochs=4", "sft.batch_size=4", "sft.max_steps=null", "sft.save_steps=10000"),
                  ("grpo.max_steps=40", "grpo.num_generations=4", "grpo.batch_size=4", "grpo.save_steps=40",
                   "grpo.logging_steps=2", "grpo.max_completion_length=96")),
        smoke=Size(4, 2, SMOKE_SFT, SMOKE_RL), rl_curves=("reward", "rewards/gs_reasoner")),
)}
