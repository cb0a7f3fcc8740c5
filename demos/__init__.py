"""Gradio demos, one app per module: `build_demo(...) -> gr.Blocks` (not launched, so tests build it) and
`main(argv)` to serve it, bound to 127.0.0.1 unless told otherwise.

    mmreason demo grounded_chat --port 7860          # the quickstart's checkpoint if trained, else a tiny one
    mmreason demo dataset_explorer --data data/scenes

`DEMOS` names them; `main` picks one by name and hands it the rest of the command line. Every app starts
without `--model`: `default_model` picks the quickstart's trained checkpoint when it exists, else the tiny
model of `mmreason.models.resolve_checkpoint` (built offline on first use).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

DEMOS: dict[str, tuple[str, str]] = {
    "grounded_chat": ("mmreason.demos.grounded_chat:main",
                      "picture or video + question -> streamed trace, boxes, zooms and cited moments drawn"),
    "dataset_explorer": ("mmreason.demos.dataset_explorer:main",
                         "a dataset built by `mmreason build`: filter, ground truth drawn, trace parsed"),
    "runs": ("mmreason.demos.runs:main",
             "training run folders -> reward, KL, length, tool-call and eval curves overlaid; completions"),
    "gui_agent": ("mmreason.demos.gui_agent:main",
                  "screenshot or loopback page + instruction -> the action drawn; steps in headless Chromium"),
    "spatial_3d": ("mmreason.demos.spatial_3d:main",
                   "point cloud + question -> 3D view with predicted and ground-truth boxes, rendered views"),
    "audio_reasoning": ("mmreason.demos.audio_reasoning:main",
                        "audio + question -> waveform and spectrogram with the cited spans highlighted"),
}

# What `mmreason quickstart` trains (its report opens the demo on it); used when no --model is given.
QUICKSTART_MODEL = Path("outputs/quickstart/grpo/final")
TINY_MODEL = "tiny:qwen2_5_vl"


def default_model() -> str:
    """The quickstart's trained checkpoint (relative to the working folder) when it is complete, else the
    tiny model: so every app starts on a fresh checkout."""
    done = (QUICKSTART_MODEL / "config.json").is_file() and (QUICKSTART_MODEL / "model.safetensors").is_file()
    return str(QUICKSTART_MODEL) if done else TINY_MODEL


def load_model(spec: str | None = None, *, device: str | None = None) -> tuple[Any, Any, str]:
    """(model, processor, family) from a checkpoint directory or ``tiny:<family>`` (built once, offline,
    where training and evaluation build it too: `mmreason.models.resolve_checkpoint`); None: `default_model`."""
    from mmreason.models import detect_family, load, resolve_checkpoint

    path = str(resolve_checkpoint(spec or default_model()))
    model, processor = load({"path": path, "device": device})
    model.eval()
    return model, processor, detect_family(path)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="checkpoint directory, or tiny:<family> (default: the quickstart's "
                        f"{QUICKSTART_MODEL} when trained, else {TINY_MODEL})")


MAX_UPLOAD_MB = 100.0  # a photo, a screenshot or a room scan fits; a stray multi-gigabyte file does not


def _megabytes(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", help="e.g. cuda or cpu (default: where loading puts the model)")
    parser.add_argument("--max-upload-mb", type=_megabytes, default=MAX_UPLOAD_MB,
                        help=f"largest upload accepted, in MiB; a larger one is refused with HTTP 413 "
                        f"(default {MAX_UPLOAD_MB:g})")


def upload_limit(args: argparse.Namespace | None = None) -> int:
    """The upload limit in bytes: Gradio stops writing an upload to disk once past it and answers 413."""
    mb = getattr(args, "max_upload_mb", None)  # a namespace built by hand gets the default
    return int((MAX_UPLOAD_MB if mb is None else mb) * 1024 * 1024)


def app_temp_dir() -> Path:
    """The one folder the app serves files from: ``$GRADIO_TEMP_DIR`` when set, else a fresh private one
    made here and handed to Gradio. Gradio serves uploads and outputs only from it (plus nothing else: no
    `allowed_paths`), so a request for any other path, ``..`` included, is refused."""
    folder = os.environ.get("GRADIO_TEMP_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="mmreason-demo-")
        os.environ["GRADIO_TEMP_DIR"] = folder  # read by Gradio each time it stores a file
    return Path(folder)


def serve(demo: Any, args: argparse.Namespace, *, block: bool = True) -> int:
    """Launch on ``args.host:args.port`` with a queue (a slow generation does not block the page), no share
    link, no server-side rendering, uploads bounded by `upload_limit` and files served only from
    `app_temp_dir`; with `block`, wait."""
    limit = upload_limit(args)
    folder = app_temp_dir()
    if block:
        print(f"uploads over {limit / 1024 ** 2:g} MiB are refused (--max-upload-mb); files are served "
              f"from {folder} only", file=sys.stderr)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, share=False, ssr_mode=False,
        prevent_thread_lock=not block, quiet=not block, max_file_size=limit)
    return 0


def main(argv: Sequence[str] | None = None, **services: Any) -> int:
    """`mmreason demo NAME [options]`: serve the named demo. `services` are handed to the app's `main` as
    keywords (the CLI gives the runs dashboard the training-log readers, which demos do not import)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in DEMOS:
        known = "\n".join(f"  {name:16} {help_}" for name, (_, help_) in DEMOS.items())
        stream = sys.stdout if not argv or argv[0] in ("-h", "--help") else sys.stderr
        if argv and argv[0] not in ("-h", "--help"):
            print(f"mmreason demo: unknown demo {argv[0]!r}", file=stream)
        print(f"usage: mmreason demo NAME [options]\n\ndemos:\n{known}", file=stream)
        return 0 if stream is sys.stdout else 2
    import inspect

    from mmreason.registry import resolve_object

    app_main = resolve_object(DEMOS[argv[0]][0])
    accepted = inspect.signature(app_main).parameters
    return int(app_main(argv[1:], **{k: v for k, v in services.items() if k in accepted}) or 0)
