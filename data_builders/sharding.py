"""Which samples a run builds: per-sample randomness, globally aligned chunks, and shards of chunks.

The whole dataset of `n` samples is cut into chunks of `chunk_size` consecutive indices, aligned on
multiples of `chunk_size`. Shard ``i/k`` builds the chunks ``c`` with ``c % k == i``, so k machines
write exactly the files one machine would, and copying their outputs into one folder *is* the
single-run dataset. Only when `n` makes fewer than k chunks do the chunks shrink to ``n // k`` samples
(`shard_chunk_size`), so that every shard still builds its share: the files then differ from a
one-machine run's, the rows do not. Each sample draws from its own generator seeded by
``(seed, index)``, so its content never depends on sharding, chunking, workers or resumption.
"""

from __future__ import annotations

import re

import numpy as np

ID_DIGITS = 9  # zero-padded, so sorting ids as strings sorts samples by index


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"i/k"`` (or a pair) -> ``(i, k)`` with ``0 <= i < k``.

    >>> parse_shard("2/8")
    (2, 8)
    >>> parse_shard(None)
    (0, 1)
    """
    if text is None:
        return (0, 1)
    if isinstance(text, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"shard must look like 'i/k' (e.g. 0/4), got {text!r}")
        i, k = int(m.group(1)), int(m.group(2))
    else:
        i, k = (int(v) for v in text)
    if k < 1 or not 0 <= i < k:
        raise ValueError(f"shard {i}/{k}: need k >= 1 and 0 <= i < k")
    return (i, k)


def sample_rng(seed: int, index: int, *salt: int) -> np.random.Generator:
    """The generator for sample `index`: a function of (seed, index, salt) only.

    >>> float(sample_rng(0, 5).random()) == float(sample_rng(0, 5).random())
    True
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), *map(int, salt)]))


def sample_id(name: str, index: int) -> str:
    """Row id of sample `index` of builder `name`.

    >>> sample_id("image_scenes", 42)
    'image_scenes-000000042'
    """
    return f"{name}-{index:0{ID_DIGITS}d}"


def chunk_ranges(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """All chunks of the dataset as half-open index ranges.

    >>> chunk_ranges(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    if n < 0 or chunk_size < 1:
        raise ValueError(f"need n >= 0 and chunk_size >= 1, got n={n}, chunk_size={chunk_size}")
    return [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]


def shard_chunk_size(n: int, chunk_size: int, shards: int) -> int:
    """The chunk size a `shards`-way build of `n` samples uses: `chunk_size`, unless that would leave a
    shard without a chunk (``--n 32 --shard 1/4`` with 64-sample chunks built nothing).

    >>> shard_chunk_size(32, 64, 4), shard_chunk_size(10_000, 64, 4), shard_chunk_size(32, 64, 1)
    (8, 64, 64)
    >>> shard_chunk_size(7, 4, 2)  # two chunks already give each shard one: the files stay a single run's
    4
    """
    if shards <= 1 or -(-n // chunk_size) >= shards:
        return chunk_size
    return max(1, min(chunk_size, n // shards))  # floor: then n // size >= shards chunks when n >= shards


def shard_chunks(n: int, chunk_size: int, shard: tuple[int, int] = (0, 1)) -> list[tuple[int, int]]:
    """The chunks shard ``(i, k)`` builds: every k-th chunk starting at i (strided, so shards stay balanced).

    >>> shard_chunks(10, 2, (1, 2))
    [(2, 4), (6, 8)]
    """
    i, k = parse_shard(shard)
    return [r for c, r in enumerate(chunk_ranges(n, chunk_size)) if c % k == i]


def chunk_name(start: int, end: int) -> str:
    """File stem of a chunk; names sort in index order.

    >>> chunk_name(0, 64)
    'part-000000000-000000064'
    """
    return f"part-{start:0{ID_DIGITS}d}-{end:0{ID_DIGITS}d}"


def media_dir(index: int) -> str:
    """Sub-folder (relative to the dataset root) for sample `index`'s media: 1000 samples a folder.

    >>> media_dir(12345)
    'media/000012'
    """
    return f"media/{index // 1000:06d}"
