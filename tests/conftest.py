"""Test-wide settings: offline, CPU, deterministic; the `gpu` marker skips without CUDA."""

import os

# No hub is reachable: any accidental download must fail fast instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


def pytest_configure(config):
    # Tiny models run ops far too small to split across cores; with two threads on a shared 2-core
    # machine they ran ~20x slower than with one (each thread spins waiting for the other).
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:
        pass


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------------------------------ tiny models
# One tiny checkpoint per family per test session, built offline on first use and shared by every test.
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Factory: `tiny_model_dir("qwen2_5_vl") -> Path` of a tiny checkpoint (seed 0), built at most once."""
    from mmreason.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    built = {}

    def get(family: str = "qwen2_5_vl"):
        if family not in built:
            built[family] = build_tiny(family, root / family, seed=0)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """Factory: `tiny_model("qwen2_5_vl") -> (model, processor)`, loaded once and shared.

    The model is shared across tests: do not train it in place (`copy.deepcopy` it first).
    """
    from mmreason.models.loading import load

    loaded = {}

    def get(family: str = "qwen2_5_vl"):
        if family not in loaded:
            loaded[family] = load(tiny_model_dir(family))
        return loaded[family]

    return get


@pytest.fixture
def colour_rows():
    """Writes `n` 56-px images of distinct colours and a data.jsonl asking each one's colour ("shade i")
    into a folder, the smallest SFT dataset a training test needs."""
    from PIL import Image

    from mmreason.schema import write_jsonl

    def write(folder, n=4, step=60):
        for i in range(n):
            Image.new("RGB", (56, 56), (step * i, 100, 200)).save(folder / f"{i}.png")
        write_jsonl([{"id": f"r{i}", "task": "vqa", "source": "s", "messages": [
            {"role": "user", "content": [{"type": "image", "image": f"{i}.png"}, {"type": "text", "text": "Colour?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": f"shade {i}"}]}]} for i in range(n)],
            folder / "data.jsonl")
        return folder
    return write
