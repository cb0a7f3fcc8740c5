"""Data builders: one module per source, each writing a canonical grounded-CoT dataset.

Every builder is ``build(out_dir, *, n, seed=0, shard=(0, 1), workers=1, chunk_size=64, progress=True,
**options) -> Path`` on top of
`mmreason.data_builders.common.build_dataset` (deterministic per seed, shardable, resumable, with a
dataset card). From the shell::

    mmreason build image_scenes --out data/scenes --n 10000 --seed 0 --shard 3/8 --workers 2 \\
        --set trace=deepeyes --set 'qtypes=["small_color", "small_text"]'
"""

from __future__ import annotations

import argparse
import json
import sys

# name -> "module:function"; resolved lazily so listing builders imports nothing heavy.
BUILDERS: dict[str, str] = {
    "image_scenes": "mmreason.data_builders.image_scenes:build",
    "video_clips": "mmreason.data_builders.video_clips:build",
    "audio_speech": "mmreason.data_builders.audio_speech:build",
    "gui_pages": "mmreason.data_builders.gui_pages:build",
    "gui_distill": "mmreason.data_builders.gui_distill:build",
    "gui_recovery": "mmreason.data_builders.gui_recovery:build",
    "scenes_3d": "mmreason.data_builders.scenes_3d:build",
    "convert_coco": "mmreason.data_builders.converters:build_coco",
    "convert_refcoco": "mmreason.data_builders.converters:build_refcoco",
    "convert_grit": "mmreason.data_builders.converters:build_grit",
    "convert_deepeyes": "mmreason.data_builders.converters:build_deepeyes",
    "convert_charades": "mmreason.data_builders.converters:build_charades",
    "convert_screenspot": "mmreason.data_builders.converters:build_screenspot",
    "convert_androidcontrol": "mmreason.data_builders.converters:build_androidcontrol",
    "convert_scanrefer": "mmreason.data_builders.converters:build_scanrefer",
    "convert_scanqa": "mmreason.data_builders.converters:build_scanqa",
    "teacher_rationales": "mmreason.data_builders.teacher:build",
    "thought_dropout": "mmreason.data_builders.thought_dropout:build",
}


def get_builder(name: str):
    """The `build` function registered as `name`."""
    from mmreason.registry import resolve_object

    if name not in BUILDERS:
        import difflib

        close = difflib.get_close_matches(name, list(BUILDERS), n=1)
        raise KeyError(f"unknown builder {name!r}{f'; did you mean {close[0]!r}' if close else ''}; "
                       f"known: {', '.join(sorted(BUILDERS))}")
    return resolve_object(BUILDERS[name])


def builder_options(name: str) -> dict[str, object]:
    """The ``--set`` options builder `name` takes, with their defaults, read from where the builder declares
    them: a converter's ``options`` (the format's own plus the common ones), else its module's ``DEFAULTS``,
    plus ``preset`` where the module has ``PRESETS``.

    >>> builder_options("convert_screenspot")["src"] is None
    True
    """
    build = get_builder(name)
    declared = getattr(build, "options", None)
    if declared is not None:
        return dict(declared)
    module = sys.modules[build.__module__]
    out = dict(getattr(module, "DEFAULTS", {}))
    if hasattr(module, "PRESETS"):
        out["preset"] = None
    return out


def _known_values(module: object, key: str) -> list[str]:
    # a builder names an option's vocabulary after it (qtypes: QTYPES, trace: TRACES, preset: PRESETS)
    for attr in (key.upper(), key.upper() + "S"):
        known = getattr(module, attr, None)
        if isinstance(known, (dict, tuple, list, frozenset, set)) and all(isinstance(k, str) for k in known):
            return sorted(known)
    return []


def options_help(name: str) -> str:
    """What ``mmreason build NAME --help`` adds: each option with its default and, where the builder has
    one, the values it knows."""
    try:
        options = builder_options(name)
    except ImportError as exc:  # the help still prints; building would fail the same way
        return f"{name} options: unavailable ({exc})"
    module = sys.modules[get_builder(name).__module__]
    lines = [f"{name} options (--set KEY=VALUE), with their defaults:"]
    for key in sorted(options):
        lines.append(f"  {key} = {json.dumps(options[key])}")
        known = _known_values(module, key)
        if known:
            lines.append(f"      known: {', '.join(known)}")
    return "\n".join(lines)


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)  # numbers, lists, true/false, quoted strings
    except ValueError:
        return key.strip(), value  # a bare word is a string


def main(argv: list[str] | None = None) -> int:
    """`mmreason build BUILDER --out DIR --n N [--seed S] [--shard i/k] [--workers W] [--set KEY=VALUE ...]`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = next((a for a in argv if a in BUILDERS), None)
    # the builder's own options are listed when one is named: `mmreason build image_scenes --help`
    epilog = options_help(named) if named else "Name a builder before --help to list its options."
    parser = argparse.ArgumentParser(prog="mmreason build", description="Build a synthetic grounded-CoT dataset.",
                                     epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builder", choices=sorted(BUILDERS))
    parser.add_argument("--out", required=True, help="output folder (re-run the same command to resume)")
    parser.add_argument("--n", type=int, required=True, help="number of samples in the whole dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard", default="0/1", help="i/k: build the i-th of k disjoint parts (default 0/1)")
    parser.add_argument("--workers", type=int, default=1, help="processes building chunks in parallel")
    parser.add_argument("--chunk-size", type=int, default=None, help="samples per Parquet file (default 64)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--set", dest="options", action="append", type=_option, default=[], metavar="KEY=VALUE",
                        help="builder option; VALUE is JSON or a bare string (repeatable)")
    args = parser.parse_args(argv)
    from mmreason.data_builders.sharding import parse_shard

    run = {"workers": args.workers, "progress": not args.no_progress}
    if args.chunk_size is not None:
        run["chunk_size"] = args.chunk_size
    try:
        out = get_builder(args.builder)(args.out, n=args.n, seed=args.seed, shard=parse_shard(args.shard),
                                        **run, **dict(args.options))
    except (ValueError, KeyError) as exc:
        print(f"mmreason build: {exc}", file=sys.stderr)
        return 2
    print(f"{args.builder}: wrote {out} (card: {out}/README.md)")
    return 0
