"""Every demo in a real headless Chromium: the page loads, a file is uploaded, the run button is clicked, and
once the result element holds the result the page is saved as a screenshot (``MMREASON_SCREENSHOTS=DIR``
writes them there, as the README's tour shows them; by default into the test's temp folder). The answer is
started by a prefill, as in the other demo tests, so the screenshot shows a drawing rather than a random
model's noise. Slow tier: six apps in one browser; `test_demos.py` drives one in the fast tier."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo_server import serve_demo

pytestmark = pytest.mark.slow
FAMILY = "qwen2_5_vl"
BUDGET = 64 * 28 * 28
DONE = """(sel) => (document.querySelector(sel)?.innerText || '').includes('"stop_reason": "')"""


@pytest.fixture(scope="module")
def browser():
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        yield chromium
        chromium.close()


def _drive(browser, demo, name: str, out: Path, act) -> None:
    """Serve `demo`, load it, let `act(page)` upload and click, then save the page as NAME.png."""
    url = serve_demo(demo)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(url, timeout=120_000)
        page.wait_for_selector("button", timeout=120_000)
        act(page)
        page.wait_for_timeout(500)  # let the last images paint
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    finally:
        page.close()
        demo.close()


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MMREASON_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _prefill(page, text: str) -> None:
    page.get_by_label("start the answer with (optional)").fill(text)


def test_dataset_explorer_in_chromium(browser, out, tmp_path):
    from mmreason.data_builders import get_builder
    from mmreason.demos.dataset_explorer import build_demo

    # the image builder: the GUI one drives its own Chromium, which Playwright's sync API refuses here
    data = get_builder("image_scenes")(str(tmp_path / "scenes"), n=3, seed=1, progress=False)

    def act(page):
        page.get_by_role("button", name="Show").click()
        page.wait_for_selector("#pictures img", timeout=120_000)
        assert "image_scenes-" in page.locator("#about").inner_text()

    _drive(browser, build_demo([str(data)]), "dataset_explorer", out, act)


def test_runs_in_chromium(browser, out, tmp_path):
    from mmreason.demos.runs import LogReaders, build_demo
    from mmreason.train import logging as train_logging
    from mmreason.train import plots

    for name, slope in (("sft", 0.05), ("grpo", 0.1)):
        with train_logging.RunLogger(tmp_path / name, report_to=("jsonl",), tensorboard=False) as log:
            for step in range(1, 21):
                log.log(step, {"reward": slope * step ** 0.5, "rewards/iou": slope * step ** 0.5 / 2,
                               "kl": 0.002 * step, "completion_length": 30 - step / 2})
                log.log_samples(step, [{"reward": slope * step, "completion": f"<answer>{step}</answer>"}])
    readers = LogReaders(plots.load_run, plots.run_labels, plots.select_metrics, plots.draw,
                         train_logging.read_jsonl)

    def act(page):
        page.get_by_role("button", name="Plot").click()
        page.wait_for_selector("#curves img", timeout=120_000)
        assert "metrics:" in page.locator("#drawn").inner_text()

    _drive(browser, build_demo([str(tmp_path / "sft"), str(tmp_path / "grpo")], readers), "runs", out, act)


def test_grounded_chat_in_chromium(browser, out, tiny_model, tmp_path):
    from mmreason.demos.grounded_chat import ChatConfig, build_demo, example_picture

    model, processor = tiny_model(FAMILY)
    example_picture().save(tmp_path / "shapes.png")

    def act(page):
        page.locator("#picture input[type=file]").set_input_files(str(tmp_path / "shapes.png"))
        page.wait_for_selector("#picture img", timeout=60_000)
        _prefill(page, '<think>The red square is at the left.</think><answer>{"bbox_2d": [30, 40, 90, 100]}'
                       '</answer>')
        page.get_by_role("button", name="Ask").click()
        page.wait_for_function(DONE, arg="#parsed", timeout=180_000)
        assert page.locator("#annotated img").count() == 1

    demo = build_demo(model, processor, FAMILY, config=ChatConfig(max_new_tokens=8, max_pixels=BUDGET, tools=()))
    _drive(browser, demo, "grounded_chat", out, act)


def test_gui_agent_in_chromium(browser, out, tiny_model, tmp_path):
    from mmreason.demos.gui_agent import build_demo

    model, processor = tiny_model(FAMILY)
    shot = Image.new("RGB", (800, 500), (245, 245, 245))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(shot)
    draw.rectangle((300, 220, 500, 280), fill=(32, 80, 224))
    draw.text((375, 242), "Submit", fill=(255, 255, 255))
    shot.save(tmp_path / "screen.png")

    def act(page):
        page.locator("#screenshot input[type=file]").set_input_files(str(tmp_path / "screen.png"))
        _prefill(page, '<think>The Submit button is in the middle. I tap it.</think><tool_call>{"name": '
                       '"mobile_use", "arguments": {"action": "click", "coordinate": [250, 156]}}</tool_call>')
        page.get_by_role("button", name="Run").click()
        page.wait_for_selector("#action img", timeout=180_000)
        page.wait_for_function("""() => (document.querySelector('#parsed')?.innerText || '').includes('click')""",
                               timeout=60_000)

    _drive(browser, build_demo(model, processor, FAMILY), "gui_agent", out, act)


def test_spatial_3d_in_chromium(browser, out, tiny_model, tmp_path):
    from mmreason.demos.spatial_3d import SceneConfig, build_demo, example_cloud

    model, processor = tiny_model(FAMILY)
    np.save(tmp_path / "room.npy", example_cloud())

    def act(page):
        page.locator("input[type=file]").first.set_input_files(str(tmp_path / "room.npy"))
        _prefill(page, "<think>table 1 <bbox>(0.55, 0.45, 0.0, 1.45, 1.15, 0.8)</bbox></think><answer>by the "
                       "wall</answer>")
        page.get_by_role("button", name="Ask").click()
        page.wait_for_function(DONE, arg="#parsed", timeout=180_000)
        page.wait_for_selector("#scene .js-plotly-plot", timeout=60_000)

    config = SceneConfig(views=4, view_size=224, num_points=6000, max_new_tokens=8, max_pixels=BUDGET)
    _drive(browser, build_demo(model, processor, FAMILY, config=config), "spatial_3d", out, act)


def test_audio_reasoning_in_chromium(browser, out, tiny_model, tmp_path):
    from mmreason.demos.audio_reasoning import build_demo, example_audio

    model, processor = tiny_model(FAMILY)
    clip = example_audio(tmp_path / "audio")

    def act(page):
        page.locator("#clip input[type=file]").set_input_files(str(clip))
        page.wait_for_selector("#clip audio, #clip .waveform-container, #clip button", timeout=60_000)
        _prefill(page, "<think>The word is at 0.5-1.0 s.</think><answer>lemon</answer>")
        page.get_by_role("button", name="Ask").click()
        page.wait_for_function(DONE, arg="#parsed", timeout=180_000)
        page.wait_for_selector("#pictures img", timeout=60_000)

    _drive(browser, build_demo(model, processor, FAMILY), "audio_reasoning", out, act)
