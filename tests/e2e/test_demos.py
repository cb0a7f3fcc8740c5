"""The grounded-chat demo on a real tiny model: marks mapped from each family's frame to original pixels,
the streamed answer with a zoom executed (the first turn forced to call the tool: a random model never
does), the Blocks built, and the server launched on 127.0.0.1, fetched over HTTP and driven once in
headless Chromium."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from mmreason.demos import DEMOS
from mmreason.demos import app_temp_dir as demo_temp_dir
from mmreason.demos import main as demo_main
from mmreason.demos.grounded_chat import (
    COLOURS, ChatConfig, Mark, annotate, build_demo, chat_stream, example_picture, marks_of,
)
from mmreason.geometry import ImageFrame

FAMILY = "qwen2_5_vl"
BUDGET = 64 * 28 * 28
ZOOM = ('<think>the square is on the left</think><tool_call>{"name": "image_zoom_in", '
        '"arguments": {"bbox_2d": [20, 30, 100, 110]}}</tool_call>')


def test_marks_come_back_in_original_pixels_from_each_frame():
    frame = ImageFrame(width=480, height=320, resized_width=252, resized_height=168)
    text = ('<think>{"bbox_2d": [63, 42, 126, 84]}</think><tool_call>{"name": "image_zoom_in", "arguments": '
            '{"bbox_2d": [0, 0, 126, 84]}}</tool_call><answer>{"point_2d": [126, 84]}</answer>')
    marks = marks_of(text, frame, "resized")
    kinds = [(m.kind, m.where) for m in marks]
    assert kinds == [("box", "reasoning"), ("box", "tool_call"), ("point", "answer")]
    assert marks[0].pixels == pytest.approx((120, 80, 240, 160))
    assert marks[2].pixels == pytest.approx((240, 160))
    norm = marks_of('<answer>[{"bbox_2d": [250, 500, 500, 1200]}]</answer>', frame, "norm1000")
    assert norm[0].pixels == pytest.approx((120, 160, 240, 320))  # clipped to the picture's bottom edge
    assert marks_of("no coordinates at all <think>", frame, "resized") == ()


def test_annotate_draws_each_kind_in_its_colour():
    image = Image.new("RGB", (200, 100), "white")
    marks = [Mark("box", "answer", (10, 10, 90, 60), "cup"), Mark("point", "tool_call", (150, 50), None),
             Mark("box", "reasoning", (50, 50, 40, 40), None)]  # the last is inverted: skipped, no crash
    out = annotate(image, marks)
    assert out.size == image.size and image.getpixel((10, 30)) == (255, 255, 255)  # the input is untouched
    assert out.getpixel((10, 30)) == COLOURS["answer"]
    assert out.getpixel((150, 50 - 10)) == COLOURS["tool_call"]  # the crosshair's vertical arm


def test_chat_streams_tokens_runs_the_zoom_and_draws_it(tiny_model):
    model, processor = tiny_model(FAMILY)
    picture = example_picture()
    config = ChatConfig(max_new_tokens=48, max_turns=2, max_pixels=BUDGET)
    updates = list(chat_stream(model, processor, FAMILY, picture, "Where is the red square?", config=config,
                               prefill=ZOOM))
    final = updates[-1]
    assert final.done and all(not u.done for u in updates[:-1]) and len(updates) > 3  # streamed
    assert all(len(a.trace) <= len(b.trace) for a, b in zip(updates[:-2], updates[1:-1]))  # text only grows
    assert final.trace.startswith(ZOOM) and "[tool image_zoom_in on " in final.trace
    assert final.stop_reason in ("max_tokens", "answer", "no_call", "max_turns")
    # the zoom box, read in Qwen2.5-VL's resized frame, is mapped to the 480x320 original and drawn there
    frame = ImageFrame.for_family(480, 320, FAMILY, max_pixels=BUDGET)
    sx, sy = 480 / frame.resized_width, 320 / frame.resized_height
    zoom = next(m for m in final.marks if m.where == "tool_call")
    assert zoom.pixels == pytest.approx((20 * sx, 30 * sy, 100 * sx, 110 * sy))
    assert final.image.size == picture.size
    assert final.image.getpixel((round(zoom.pixels[0]), round((zoom.pixels[1] + zoom.pixels[3]) / 2))) == \
        COLOURS["tool_call"]
    assert len(final.crops) == 1  # cut from the original, at full resolution
    assert final.crops[0].size == pytest.approx((80 * sx, 80 * sy), abs=1.5)
    assert any(len(u.crops) == 1 for u in updates[:-1])  # shown while the model went on
    summary = final.summary()
    assert summary["zooms"] == 1 and summary["marks"][0]["in"] == "tool_call"
    with pytest.raises(ValueError, match="question"):
        next(chat_stream(model, processor, FAMILY, picture, "  ", config=config))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_on_localhost_and_answers_in_a_browser(tiny_model):
    import gradio as gr

    model, processor = tiny_model(FAMILY)
    config = ChatConfig(max_new_tokens=8, max_pixels=BUDGET, tools=())
    demo = build_demo(model, processor, FAMILY, config=config)
    assert isinstance(demo, gr.Blocks)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False,
                        quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and "mmreason grounded chat" in response.read().decode()
        chromium = Path("/usr/bin/chromium")
        if not chromium.exists():
            pytest.skip("no Chromium to drive the page")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update"]
            browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=args)
            try:
                page = browser.new_page()
                page.goto(url, timeout=60_000)
                picture = Path(demo_temp_dir()) / "upload.png"
                example_picture().save(picture)
                page.locator("#picture input[type=file]").set_input_files(str(picture))
                page.wait_for_selector("#picture img", timeout=60_000)
                page.get_by_role("button", name="Ask").click()
                # the last update names how the run ended; streamed ones say "stop_reason": null
                done = """document.querySelector('#parsed')?.innerText.includes('"stop_reason": "')"""
                page.wait_for_function(done, timeout=90_000)
                assert page.locator("#trace textarea").input_value()  # the model's text reached the page
                assert page.locator("#annotated img").count() == 1
            finally:
                browser.close()
    finally:
        demo.close()


def test_scene_demo_draws_the_named_boxes_on_the_views(tiny_model):
    import gradio as gr

    from mmreason.demos import spatial_3d as scene_3d
    from mmreason.modalities.point_render import project_box

    model, processor = tiny_model(FAMILY)
    config = scene_3d.SceneConfig(views=4, view_size=160, num_points=3000, max_new_tokens=96,
                                  max_pixels=BUDGET)
    cloud = scene_3d.load_scene(scene_3d.example_cloud(), FAMILY, config)
    table = (0.5, 0.5, 0.0, 1.5, 1.1, 0.75)  # the example room's table, scene metres
    answer = "<think>table 1 <bbox>(0.5, 0.5, 0.0, 1.5, 1.1, 0.75)</bbox></think><answer>table 1 " \
             "<bbox>(0.5, 0.5, 0.0, 1.5, 1.1, 0.75)</bbox></answer>"
    final = list(scene_3d.scene_stream(model, processor, FAMILY, cloud, "Where is the table?", config=config,
                                       prefill=answer))[-1]
    assert final.done and final.stop_reason == "answer" and final.answer.startswith("table 1")
    assert final.boxes == ({"name": "table", "count": 1, "box": list(table)},)  # named twice, drawn once
    assert len(final.views) == 4
    marked = 0
    for image, view in zip(final.views, cloud.views):
        box = project_box(table, view.camera)
        if box is not None:  # the mark's left edge, halfway down, is the marks' pure red
            marked += image.getpixel((int(box[0]), int((box[1] + box[3]) / 2))) == (255, 0, 0)
    assert marked >= 2
    streamed = list(scene_3d.scene_stream(model, processor, FAMILY, cloud, "How many tables?",
                                          config=scene_3d.SceneConfig(max_new_tokens=8, max_pixels=BUDGET)))
    assert streamed[-1].done and len(streamed) > 1 and streamed[-1].trace
    assert isinstance(scene_3d.build_demo(model, processor, FAMILY, config=config), gr.Blocks)


def test_demo_command_lists_and_rejects_names(capsys):
    assert demo_main([]) == 0 and "grounded_chat" in capsys.readouterr().out
    assert demo_main(["nope"]) == 2 and "unknown demo 'nope'" in capsys.readouterr().err
    assert {"grounded_chat", "dataset_explorer", "runs"} <= set(DEMOS)
