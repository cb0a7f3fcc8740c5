"""The tool registry: schemas derived from signatures and docstrings (the env left out), the call protocol
(unknown, disallowed, unreadable, mistyped calls), tools named by file spec, `mmreason ls tools`, and
every built-in against arbitrary JSON arguments (hypothesis)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mmreason import cli, traces
from mmreason.errors import RecipeError
from mmreason.modalities.image import load_image
from mmreason.modalities.point_cloud import load_point_cloud
from mmreason.modalities.video import load_video, write_video
from mmreason.tools import TOOLS, resolve_tools, run_tool_call, tool_schemas, tools_prompt
from mmreason.tools.env import Observation, ToolEnv, ToolSettings

BUDGET = {"image": {"min_pixels": 0, "max_pixels": 64 * 64}, "video": {"min_pixels": 0, "max_pixels": 64 * 64}}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("tool-registry")
    rng = np.random.default_rng(0)
    write_video(d / "clip.mp4", [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(10)], 5)
    image = load_image(Image.fromarray(rng.integers(0, 255, (200, 300, 3), np.uint8)), "qwen2_5_vl",
                       max_pixels=64 * 64, min_pixels=0)
    video = load_video(d / "clip.mp4", "qwen2_5_vl", nframes=2, max_pixels=64 * 64, min_pixels=0)
    cloud = load_point_cloud(rng.uniform(-1, 1, (500, 3)))
    return ToolEnv("qwen2_5_vl", images=[image], videos=[video], clouds=[cloud],
                   settings=ToolSettings(view_size=32, segment_frames=2), media_options=BUDGET)


def test_every_tool_has_a_schema_without_the_env():
    schemas = {s["function"]["name"]: s["function"] for s in tool_schemas()}
    assert set(schemas) == set(TOOLS)
    for name, fn in schemas.items():
        assert fn["description"] and "env" not in fn["parameters"]["properties"]
        for prop in fn["parameters"]["properties"].values():
            assert prop["description"]
    zoom = schemas["image_zoom_in"]["parameters"]
    assert zoom["required"] == ["bbox_2d"]
    assert zoom["properties"]["bbox_2d"] == {"type": "array", "items": {"type": "number"},
                                             "description": zoom["properties"]["bbox_2d"]["description"]}
    assert schemas["crop_region"]["parameters"]["required"] == ["bbox_3d"]
    assert schemas["image_zoom_in_tool"]["parameters"] == zoom  # DeepEyes' name, same tool


def test_tools_prompt_declares_the_schemas_and_the_call_format():
    text = tools_prompt(["image_zoom_in"])
    listed = text.split("<tools>\n")[1].split("\n</tools>")[0]
    assert json.loads(listed) == tool_schemas(["image_zoom_in"])[0]
    assert "<tool_call>" in text and "image_rotate" not in text


def test_calls_parsed_from_model_output(env):
    trace = traces.parse('<tool_call>{"name": "image_zoom_in", "arguments": {"bbox_2d": [0, 0, 300, 200]}}'
                         "</tool_call>")
    obs = run_tool_call(trace.tool_calls[-1], env)
    assert not obs.error and obs.images
    unreadable = traces.parse("<tool_call>{name: image_zoom_in, [[</tool_call>").tool_calls[-1]
    assert run_tool_call(unreadable, env).text.startswith("Error: could not read the tool call")
    assert run_tool_call(None, env).text.startswith("Error: no tool call found")


def test_unknown_disallowed_and_malformed_calls(env):
    assert run_tool_call({"name": "fly"}, env).text.startswith("Error: unknown tool 'fly'")
    allowed = run_tool_call({"name": "image_rotate", "arguments": {"angle": 3}}, env, ["image_zoom_in"])
    assert allowed.text == "Error: unknown tool 'image_rotate'; available: image_zoom_in"
    assert "must be a JSON object" in run_tool_call({"name": "image_rotate", "arguments": [3]}, env).text
    both = run_tool_call({"name": "image_rotate", "arguments": {"degrees": 3}}, env).text
    assert "unexpected argument(s) 'degrees'" in both and "missing argument(s) angle" in both
    assert "takes angle, image_index" in both
    assert run_tool_call({"name": 7, "arguments": {}}, env).error
    no_env = run_tool_call({"name": "image_rotate", "arguments": {"angle": 3}}, None)
    assert no_env.error and "needs the sample's media" in no_env.text


def test_penalty_travels_with_every_error(env):
    strict = env.with_settings(invalid_penalty=-0.05)
    assert run_tool_call({"name": "fly"}, strict).penalty == -0.05
    assert run_tool_call({"name": "image_rotate", "arguments": {"angle": "x"}}, strict).penalty == -0.05
    assert run_tool_call({"name": "image_rotate", "arguments": {"angle": 1}}, strict).penalty == 0.0


def test_tools_from_a_file_spec(tmp_path, env):
    path = tmp_path / "my_tools.py"
    path.write_text(
        "from mmreason.tools import Observation\n\n"
        "def count_images(env, plus: int = 0):\n"
        "    '''Count the input images.\n\n    Args:\n        plus: Added to the count.\n    '''\n"
        "    return Observation(str(len(env.images) + plus))\n\n"
        "def broken(env):\n"
        "    '''Always fails.'''\n"
        "    raise RuntimeError('disk on fire')\n\n"
        "def no_env(x: int):\n"
        "    '''No env.\n\n    Args:\n        x: a number.\n    '''\n"
    )
    names = [f"{path}:count_images", f"{path}:broken"]
    tools = resolve_tools(names)
    assert list(tools) == ["count_images", "broken"]
    assert run_tool_call({"name": "count_images", "arguments": {"plus": 2}}, env, names).text == "3"
    failed = run_tool_call({"name": "broken", "arguments": {}}, env, names)
    assert failed.error and "broken failed (RuntimeError: disk on fire)" in failed.text
    assert tool_schemas(names)[0]["function"]["parameters"]["properties"]["plus"]["type"] == "integer"
    with pytest.raises(RecipeError, match="environment as its first argument"):
        resolve_tools([f"{path}:no_env"])
    with pytest.raises(RecipeError, match="unknown tool 'zoom'"):
        resolve_tools(["zoom"])


def test_ls_tools_lists_every_builtin(capsys):
    assert cli.main(["ls", "tools"]) == 0
    out = capsys.readouterr().out
    for name in TOOLS:
        assert name in out


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=7) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_PARAMS = sorted({p for s in tool_schemas() for p in s["function"]["parameters"]["properties"]})


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(TOOLS) + ["nope", ""]),
       st.dictionaries(st.sampled_from(_PARAMS) | st.text(max_size=6), JSON, max_size=4))
def test_no_argument_makes_any_tool_raise(env, name, arguments):
    obs = run_tool_call({"name": name, "arguments": arguments}, env.fork())
    assert isinstance(obs, Observation) and isinstance(obs.text, str)
    assert obs.error == obs.text.startswith("Error: ")
    if obs.error:
        assert not obs.images and not obs.videos and "failed (" not in obs.text  # rejected, not crashed
