"""`python -m mmreason.models.spatial init BASE OUT [--set key=value ...]`: a spatial checkpoint from a
Qwen2.5-VL one (a folder, ``tiny:qwen2_5_vl`` or ``base:qwen2_5_vl``), its adapter freshly initialised."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from mmreason.models.spatial.pooling import SpatialConfig

    names = {f.name: f.type for f in fields(SpatialConfig)}
    parser = argparse.ArgumentParser(prog="python -m mmreason.models.spatial", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    init = sub.add_parser("init", help="attach a fresh spatial adapter to a Qwen2.5-VL checkpoint")
    init.add_argument("base")
    init.add_argument("out")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help=f"a SpatialConfig field ({', '.join(names)})")
    args = parser.parse_args(argv)
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in names:
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(names)}")
        kind = {"int": int, "float": float}.get(str(names[key]), str)
        try:
            options[key] = kind(value)
        except ValueError:
            parser.error(f"--set {key}: {value!r} is not a {kind.__name__}")
    from mmreason.errors import RecipeError
    from mmreason.models.loading import resolve_checkpoint
    from mmreason.models.spatial.qwen import init_checkpoint

    try:
        base = resolve_checkpoint(args.base)
        out = init_checkpoint(base, args.out, seed=args.seed, **options)
    except (RecipeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
