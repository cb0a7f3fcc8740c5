"""The recipe's tools section reaches the tools: frame, small-box rule, penalty, Video-CoM segments."""

from mmreason.config import load_recipe_dict
from mmreason.train.grpo import rollout_settings


def test_tools_section_reaches_tool_settings():
    recipe = load_recipe_dict({
        "model": {"path": "tiny:qwen2_5_vl"},
        "tools": {"names": ["seek_frame", "clip_segment", "zoom_frame"], "call_syntax": "video_com",
                  "coord_frame": "pixel", "small_box": "enlarge", "invalid_penalty": -0.05,
                  "segment_seconds": 2.5, "segment_frames": 8},
        "grpo": {"num_generations": 2},
    })
    config, settings = rollout_settings(recipe)
    assert config.call_syntax == "video_com"
    assert (settings.coord_frame, settings.small_box, settings.invalid_penalty) == ("pixel", "enlarge", -0.05)
    assert (settings.segment_seconds, settings.segment_frames) == (2.5, 8)
