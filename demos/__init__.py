"""Gradio demos, one app per module: `build_demo(...) -> gr.Blocks` (not launched, so tests build it) and
`main(argv)` to serve it, bound to 127.0.0.1 unless told otherwise.

    mmreason demo grounded_chat --model tiny:qwen2_5_vl --port 7860

`DEMOS` names them; `main` picks one by name and hands it the rest of the command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

DEMOS: dict[str, tuple[str, str]] = {
    "grounded_chat": ("mmreason.demos.grounded_chat:main",
                      "picture + question -> streamed trace, boxes and points drawn, zooms executed"),
    "scene_3d": ("mmreason.demos.scene_3d:main",
                 "point cloud + question -> rendered views with the named 3D boxes"),
}


def load_model(spec: str, *, device: str | None = None) -> tuple[Any, Any, str]:
    """(model, processor, family) from a checkpoint directory or ``tiny:<family>`` (built once, offline,
    where training and evaluation build it too: `mmreason.models.resolve_checkpoint`)."""
    from mmreason.models import detect_family, load, resolve_checkpoint

    path = str(resolve_checkpoint(spec))
    model, processor = load({"path": path, "device": device})
    model.eval()
    return model, processor, detect_family(path)


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


def upload_limit(args: argparse.Namespace) -> int:
    """The upload limit in bytes: Gradio stops writing an upload to disk once past it and answers 413."""
    mb = getattr(args, "max_upload_mb", None)  # a namespace built by hand gets the default
    return int((MAX_UPLOAD_MB if mb is None else mb) * 1024 * 1024)


def serve(demo: Any, args: argparse.Namespace, *, block: bool = True) -> int:
    """Launch on ``args.host:args.port`` (no share link, no server-side rendering, uploads bounded by
    `upload_limit`) and, with `block`, wait."""
    limit = upload_limit(args)
    if block:
        print(f"uploads over {limit / 1024 ** 2:g} MiB are refused (--max-upload-mb)", file=sys.stderr)
    demo.queue().launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False,
                        prevent_thread_lock=not block, quiet=not block, max_file_size=limit)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`mmreason demo NAME [options]`: serve the named demo."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in DEMOS:
        known = "\n".join(f"  {name:16} {help_}" for name, (_, help_) in DEMOS.items())
        stream = sys.stdout if not argv or argv[0] in ("-h", "--help") else sys.stderr
        if argv and argv[0] not in ("-h", "--help"):
            print(f"mmreason demo: unknown demo {argv[0]!r}", file=stream)
        print(f"usage: mmreason demo NAME [options]\n\ndemos:\n{known}", file=stream)
        return 0 if stream is sys.stdout else 2
    from mmreason.registry import resolve_object

    return int(resolve_object(DEMOS[argv[0]][0])(argv[1:]) or 0)
