"""Build a tiny random checkpoint of any backbone family, offline: `mmreason tiny-model`.

The result is an ordinary Hugging Face checkpoint directory (config, safetensors weights, generation
config, tokenizer, processor with the family's chat template) that `AutoProcessor.from_pretrained` and the
family's auto class load. Architecture and token geometry are the real family's; only sizes are toy
(see `tiny_configs`), so tests, recipes and demos run end to end on CPU in seconds.

Weights are a pure function of the seed: the same seed writes byte-identical safetensors.

    mmreason tiny-model --family qwen2_5_vl --out /tmp/tiny-qwen2_5_vl --seed 0
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from pathlib import Path

from mmreason.families import FAMILIES, get_family
from mmreason.models import tiny_configs
from mmreason.models.families import chat_template
from mmreason.models.tokenizer import build_tokenizer

MARKER = "mmreason_tiny.json"  # written last: its presence means the directory holds a complete build


def token_ids(tok, family: str) -> dict[str, int]:
    """Role -> id for the tokens a config needs, read from the built tokenizer (never hard-coded)."""
    fam = get_family(family)
    ids = {
        "image": fam.image_token, "video": fam.video_token, "vision_start": fam.vision_start,
        "vision_end": fam.vision_end, "eos": "<|im_end|>", "pad": "<|endoftext|>", "bos": "<|endoftext|>",
    }
    if fam.audio_token:
        ids |= {"audio": fam.audio_token, "audio_start": fam.audio_start, "audio_end": fam.audio_end}
    out = {role: tok.convert_tokens_to_ids(t) for role, t in ids.items()}
    if fam.audio_token:
        # Omni's thinker config records the id of the word "user" (its chat turns start with it).
        out["user"] = tok("user", add_special_tokens=False).input_ids[0]
    return out


def _processor(family: str, tok):
    import transformers as tf

    fam = get_family(family)
    parts = dict(image_processor=tiny_configs.image_processor(family), video_processor=tiny_configs.video_processor(family),
                 tokenizer=tok, chat_template=chat_template(family))
    if fam.audio_token:
        parts["feature_extractor"] = tiny_configs.feature_extractor()
    return getattr(tf, fam.processor_class)(**parts)


def _model(family: str, config, seed: int):
    import torch
    import transformers as tf

    # fork_rng: seeding here must not change the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(tf, get_family(family).model_class)(config)
    return model.to(torch.float32).eval()


@contextmanager
def _quiet_progress():
    """No "Writing model shards" bar for a 3 MB file; restores the user's setting afterwards."""
    from transformers.utils import logging

    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            logging.enable_progress_bar()


def build_tiny(family: str, out_dir, *, seed: int = 0, size: str = "test") -> Path:
    """Write a tiny random `family` checkpoint + processor to `out_dir`; returns the directory.

    `size` is a key of `tiny_configs.SIZES`: "test" (the default, CPU-test sized) or "base" (the width of
    the project's pretrained tiny base).

    The directory loads with `AutoProcessor.from_pretrained` and the family's auto class (or `models.load`).
    An existing directory is overwritten file by file.
    """
    import transformers as tf

    fam = get_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)

    tok = build_tokenizer(family)
    ids = token_ids(tok, family)
    config = tiny_configs.resize(tiny_configs.model_config(family, tiny_configs.padded_vocab(len(tok)), ids),
                                 family, size)
    model = _model(family, config, seed)
    # Greedy by default: tiny models are for tests, which want one answer per input.
    model.generation_config = tf.GenerationConfig(
        bos_token_id=ids["bos"], eos_token_id=[ids["eos"], ids["pad"]], pad_token_id=ids["pad"], do_sample=False,
    )
    with _quiet_progress():
        model.save_pretrained(out)
    _processor(family, tok).save_pretrained(out)

    meta = {
        "family": family, "seed": seed, "size": size, "model_type": fam.model_type, "auto_class": fam.auto_class,
        "parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tok),
        "image_pixels": [tiny_configs.MIN_IMAGE_TOKENS * fam.factor ** 2, tiny_configs.MAX_IMAGE_TOKENS * fam.factor ** 2],
        "note": "random weights for tests; pixel budgets are cut down (see mmreason.models.tiny_configs)",
    }
    (out / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def is_tiny_build(path, *, family: str | None = None, seed: int | None = None, size: str | None = None) -> bool:
    """True when `path` holds a complete `build_tiny` output (of `family` and `seed`, when given).

    Lets callers reuse a build instead of rebuilding; an interrupted build has no marker and is not reused.
    """
    try:
        meta = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return ((family is None or meta.get("family") == family) and (seed is None or meta.get("seed") == seed)
            and (size is None or meta.get("size", "test") == size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmreason tiny-model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True, choices=sorted(FAMILIES), help="backbone family to build")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the checkpoint into")
    parser.add_argument("--seed", type=int, default=0, help="weights are a pure function of the seed (default 0)")
    parser.add_argument("--size", default="test", choices=sorted(tiny_configs.SIZES),
                        help="test (default: CPU-test sized) or base (the pretrained tiny base's width)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    out = build_tiny(args.family, args.out, seed=args.seed, size=args.size)
    meta = json.loads((out / MARKER).read_text(encoding="utf-8"))
    print(f"tiny {args.family} (seed {args.seed}): {meta['parameters']:,} parameters, vocab {meta['vocab']}, "
          f"built in {time.perf_counter() - start:.1f}s")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
