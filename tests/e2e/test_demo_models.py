"""The model apps served on 127.0.0.1 with a real tiny model and driven with `gradio_client`: a real request
in, the expected drawing out. The first turn is forced (a random model writes no usable answer), so each
test knows where the mark must land: the cited video moment shaded on the timeline, the predicted and GT 3D
boxes in the 3D view, the click drawn and applied in headless Chromium, the cited audio span edged on the
spectrogram. Bad uploads come back as messages naming the file; a checkpoint's saved recipe sets the chat's
prompt and tools."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo_server import serve_demo

FAMILY = "qwen2_5_vl"
BUDGET = 64 * 28 * 28


def _client(url: str, tmp_path: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(tmp_path / "got"))


def test_grounded_chat_marks_the_cited_moments_of_a_video(tiny_model, tmp_path):
    from gradio_client import handle_file

    from mmreason.demos.grounded_chat import ChatConfig, build_demo
    from mmreason.modalities.video import write_video

    model, processor = tiny_model(FAMILY)
    frames = np.zeros((20, 64, 64, 3), np.uint8)
    frames[:, :, :, 0] = np.linspace(0, 255, 20, dtype=np.uint8)[:, None, None]  # red ramps up over 2 s
    video = write_video(tmp_path / "ramp.mp4", frames, fps=10)
    demo = build_demo(model, processor, FAMILY, config=ChatConfig(max_new_tokens=8, max_pixels=BUDGET,
                                                                  video_frames=4))
    url = serve_demo(demo)
    try:
        client = _client(url, tmp_path)
        cited = "FIND_SEGMENT(the red is brightest) = [1.5, 2.0] <answer>1.5 to 2.0</answer>"
        shown, trace, parsed, zooms, moments = client.predict(
            None, handle_file(str(video)), "When is it reddest?", cited, "none", False, 8,
            api_name="/ask")
        assert trace.startswith(cited) and '"label": "answer"' in parsed
        timeline = Image.open(moments[0]["image"]).convert("RGB")
        assert timeline.getpixel((int(640 * 1.75 / 2.0), 16)) == (0, 170, 0)  # shaded where it cites
        assert timeline.getpixel((int(640 * 0.5 / 2.0), 16)) != (0, 170, 0)  # and not before
        assert len(moments) >= 2 and "1.50-2.00 s" in moments[1]["caption"]
        (tmp_path / "notes.txt").write_text("not a video")
        with pytest.raises(Exception, match="notes.txt: not a video file"):
            client.predict(None, handle_file(str(tmp_path / "notes.txt")), "When?", "", "none",
                           False, 8, api_name="/ask")
    finally:
        demo.close()


def test_a_checkpoint_s_saved_recipe_sets_the_chat_prompt_and_tools(tmp_path):
    from mmreason.config import format_recipe, load_recipe
    from mmreason.demos.grounded_chat import ChatConfig, chat_row, prompt_of
    from mmreason.demos.trained_with import trained_with
    from mmreason.recipes import find_recipe

    assert trained_with(tmp_path) is None  # no recipe saved: the demo's own defaults
    (tmp_path / "recipe.yaml").write_text(format_recipe(load_recipe(find_recipe("deepeyes/qwen2_5_vl_grpo"))))
    saved = trained_with(tmp_path)
    assert (saved.prompt, saved.tools, saved.coord_frame) == ("deepeyes", ("image_zoom_in_tool",), "pixel")
    config = ChatConfig(prompt=saved.prompt, style=saved.style(), tools=saved.tools)
    row = chat_row(Image.new("RGB", (8, 8)), "What is on the sign?", config.tools, style=prompt_of(config))
    system, user = row["messages"]
    assert system["role"] == "system" and "image_zoom_in_tool" in system["content"][0]["text"]
    assert user["content"][1]["text"].startswith("Question: What is on the sign?\nThink first, call")


def test_spatial_3d_shows_predicted_and_ground_truth_boxes(tiny_model, tmp_path):
    from gradio_client import handle_file

    from mmreason.demos.spatial_3d import SceneConfig, build_demo, example_cloud

    model, processor = tiny_model(FAMILY)
    np.save(tmp_path / "room.npy", example_cloud())
    config = SceneConfig(views=2, view_size=128, num_points=2000, max_new_tokens=8, max_pixels=BUDGET)
    demo = build_demo(model, processor, FAMILY, config=config)
    url = serve_demo(demo)
    try:
        client = _client(url, tmp_path)
        answer = "<think>table 1 <bbox>(0.5, 0.5, 0.0, 1.5, 1.1, 0.75)</bbox></think><answer>table</answer>"
        gt = '[{"label": "cabinet", "box": [2.8, 2.0, 0.0, 3.6, 2.6, 1.2]}]'
        figure, views, trace, parsed = client.predict(handle_file(str(tmp_path / "room.npy")), "Where is the "
                                                      "table?", answer, True, gt, api_name="/ask")
        names = [t.get("name") for t in __import__("json").loads(figure["plot"])["data"]]
        assert names == ["points", "GT: cabinet", "predicted: table"]
        assert len(views) == 2 and '"name": "table"' in parsed
        (tmp_path / "room.ply").write_bytes(b"ply\nformat nonsense\n")
        with pytest.raises(Exception, match="room.ply: cannot be read as point cloud"):
            client.predict(handle_file(str(tmp_path / "room.ply")), "Where?", "", True, "", api_name="/ask")
    finally:
        demo.close()


PAGE = b"""<!doctype html><html><body style="margin:0;background:#fff">
<button id="go" style="position:absolute;left:400px;top:300px;width:200px;height:80px;background:#2050e0"
 onclick="document.body.style.background='#20c040'">Submit</button></body></html>"""


@pytest.fixture()
def page_url():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_gui_agent_draws_the_click_and_applies_it_in_chromium(tiny_model, tmp_path, page_url):
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium")
    from mmreason.demos.drawing import PREDICTED
    from mmreason.demos.gui_agent import MAX_PIXELS, VIEWPORT, build_demo
    from mmreason.geometry import ImageFrame

    model, processor = tiny_model(FAMILY)
    frame = ImageFrame.for_family(*VIEWPORT, FAMILY, max_pixels=MAX_PIXELS)
    x, y = round(500 * frame.resized_width / VIEWPORT[0]), round(340 * frame.resized_height / VIEWPORT[1])
    click = ('<think>The Submit button is in the middle. I press it.</think><tool_call>{"name": "mobile_use", '
             f'"arguments": {{"action": "click", "coordinate": [{x}, {y}]}}}}</tool_call>')
    demo = build_demo(model, processor, FAMILY)
    url = serve_demo(demo)
    try:
        client = _client(url, tmp_path)
        shown, trace, parsed, episode = client.predict(None, page_url, "Press Submit", click, 2, 16,
                                                       api_name="/run")
        first = __import__("json").loads(parsed)[0]
        assert first["action"]["action"] == "click"
        assert first["action"]["coordinate"] == pytest.approx([500, 340], abs=2)
        assert first["subgoals"] == ["The Submit button is in the middle.", "I press it."]
        drawn = Image.open(episode[0]["image"]).convert("RGB")
        cx, cy = first["action"]["coordinate"]
        assert drawn.getpixel((round(cx), round(cy) - 20)) == PREDICTED  # the crosshair's vertical arm
        after = Image.open(episode[1]["image"]).convert("RGB")
        assert episode[1]["caption"] == "after step 1" and after.getpixel((50, 50)) == (32, 192, 64)  # clicked
        with pytest.raises(Exception, match="only pages on this machine"):
            client.predict(None, "http://example.com/", "Press Submit", "", 1, 16, api_name="/run")
    finally:
        demo.close()


def test_audio_reasoning_highlights_the_cited_span(tiny_model, tmp_path):
    from gradio_client import handle_file

    import soundfile

    from mmreason.demos.audio_reasoning import build_demo
    from mmreason.demos.drawing import SPAN

    model, processor = tiny_model(FAMILY)
    t = np.arange(3 * 16000) / 16000
    clip = tmp_path / "tone.wav"  # 3 s: silence, a 440 Hz tone from 1 to 2 s, silence
    soundfile.write(clip, np.where((t >= 1) & (t < 2), 0.5 * np.sin(2 * np.pi * 440 * t), 0.0), 16000)
    demo = build_demo(model, processor, FAMILY)
    url = serve_demo(demo)
    try:
        client = _client(url, tmp_path)
        cited = "<think>a word at 1.0-2.0 s</think><answer>lemon</answer>"
        pictures, trace, parsed, answer = client.predict(handle_file(str(clip)), "Which word?", cited, 8,
                                                         api_name="/ask")
        assert answer == "lemon" and '"label": "evidence"' in parsed
        spectrogram = Image.open(pictures[-1]["image"]).convert("RGB")
        assert spectrogram.getpixel((50, 5)) == SPAN  # 50 columns a second: the span's left edge at 1.0 s
        assert spectrogram.getpixel((25, 5)) != SPAN
        (tmp_path / "clip.wav").write_bytes(b"RIFF....WAVEfmt garbage")
        with pytest.raises(Exception, match="clip.wav: cannot be read as audio"):
            client.predict(handle_file(str(tmp_path / "clip.wav")), "Which?", "", 8, api_name="/ask")
    finally:
        demo.close()


def test_every_model_app_builds(tiny_model):
    import gradio as gr

    from mmreason.demos import audio_reasoning, grounded_chat, gui_agent, spatial_3d

    model, processor = tiny_model(FAMILY)
    for app in (grounded_chat, gui_agent, spatial_3d, audio_reasoning):
        assert isinstance(app.build_demo(model, processor, FAMILY), gr.Blocks), app.__name__
