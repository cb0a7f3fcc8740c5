"""The main job, `mmreason quickstart`: build data, SFT, GRPO and evaluate a tiny VLM on "find the named
shape", through the toolkit's own verbs, and report what changed.

Modules, each importing only those above it: `results` (numbers recomputed from the saved eval samples),
`plots`, `report`, `pipeline` (the stages and the command). This package sits above the four jobs: it may
import all of them, and nothing imports it but the CLI.
"""

FAMILY = "qwen2_5_vl"
BASE = f"base:{FAMILY}"  # the project's pretrained tiny base (models/tiny_base/)
SFT_RECIPE = "quickstart/qwen2_5_vl_sft"
GRPO_RECIPE = "quickstart/qwen2_5_vl_grpo"
EVAL_STAGES = ("random", "base", "sft", "grpo")  # the models the report compares, in order
