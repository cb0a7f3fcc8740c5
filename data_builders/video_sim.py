"""Moving-object clips with exact per-frame boxes and event frames (appear, disappear, collide).

Objects move horizontally in their own lanes and bounce off the side walls, so they never overlap;
an optional pair shares a lane and is scripted to meet at a chosen frame: at the collision frame the
left object's right edge equals the right object's left edge (integer positions and speeds make this
exact), before it they approach, after it they move apart. Frame ``f`` is shown at ``f / fps`` seconds.
Used by `video_clips`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from mmreason.data_builders.draw import ALL_SHAPES, BACKGROUNDS, COLORS, shape_mask


@dataclass(frozen=True)
class Track:
    color: str
    shape: str
    cell: tuple[int, int]  # size of the mask the shape is drawn in
    first: int  # first visible frame
    last: int  # last visible frame (inclusive)
    xy: tuple[tuple[int, int], ...]  # top-left of the cell per visible frame, first..last

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def mask(self) -> Image.Image:
        return shape_mask(self.shape, *self.cell)

    def box_at(self, frame: int) -> tuple[int, int, int, int] | None:
        """Tight box (right/bottom exclusive) of the drawn pixels at `frame`, None while invisible."""
        if not self.first <= frame <= self.last:
            return None
        x, y = self.xy[frame - self.first]
        b = _extent(self.shape, self.cell)
        return (x + b[0], y + b[1], x + b[2], y + b[3])


@lru_cache(maxsize=512)
def _extent(shape: str, cell: tuple[int, int]) -> tuple[int, int, int, int]:
    return shape_mask(shape, *cell).getbbox()


@dataclass(frozen=True)
class Clip:
    width: int
    height: int
    fps: int
    num_frames: int
    background: tuple[int, int, int]
    tracks: tuple[Track, ...]
    collision: tuple[int, int, int] | None  # (frame, index of left track, index of right track)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def visible(self, frame: int) -> list[Track]:
        return [t for t in self.tracks if t.box_at(frame) is not None]


def _size(rng, lane_h, short_side):
    hi = max(13, min(lane_h - 6, int(short_side * 0.2)))
    s = int(rng.integers(min(hi, max(12, int(short_side * 0.1))), hi + 1))
    return s, s


def _bounce(x0: int, v: int, n: int, limit: int) -> list[int]:
    """Positions over n frames for constant speed v reflected at 0 and `limit`."""
    xs, x = [], x0
    for _ in range(n):
        xs.append(x)
        x += v
        if x < 0 or x > limit:
            v = -v
            x = -x if x < 0 else 2 * limit - x
    return xs


def simulate(rng: np.random.Generator, *, width: int = 256, height: int = 192, fps: int = 10,
             duration: float = 4.0, n_objects: int = 3, collide: bool = False) -> Clip:
    """A clip of `n_objects` distinct-coloured objects; with `collide`, the first two meet once."""
    nf = int(round(duration * fps))
    colors = rng.permutation(list(COLORS))[:n_objects].tolist()
    shapes = [ALL_SHAPES[int(rng.integers(len(ALL_SHAPES)))] for _ in range(n_objects)]
    n_lanes = n_objects - (1 if collide else 0)
    lane_h = height // n_lanes
    lanes = rng.permutation(n_lanes).tolist()
    tracks = []
    collision = None
    min_len = max(2, fps)  # visible for at least a second
    for i in range(n_objects):
        lane = lanes[0] if (collide and i < 2) else lanes[i - (1 if collide else 0)]
        if collide and i < 2:
            continue  # placed below, together
        w, h = _size(rng, lane_h, min(width, height))
        y = lane * lane_h + int(rng.integers(2, max(3, lane_h - h - 1)))
        first = 0 if rng.random() < 0.3 else int(rng.integers(0, nf // 2))
        last = nf - 1 if rng.random() < 0.3 else int(rng.integers(min(first + min_len, nf - 1), nf))
        speed = int(rng.integers(2, 5)) * (1 if rng.random() < 0.5 else -1)
        xs = _bounce(int(rng.integers(0, width - w + 1)), speed, last - first + 1, width - w)
        tracks.append((i, Track(colors[i], shapes[i], (w, h), first, last, tuple((x, y) for x in xs))))
    if collide:
        lane = lanes[0]
        sizes = [_size(rng, lane_h, min(width, height)) for _ in range(2)]
        (wa, ha), (wb, hb) = sizes
        top = lane * lane_h + int(rng.integers(2, max(3, lane_h - max(ha, hb) - 1)))
        y = [top + (max(ha, hb) - hh) // 2 for hh in (ha, hb)]  # centred on one line, so they do meet
        va, vb = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        xc = int(rng.integers(int(width * 0.4), int(width * 0.6)))
        c = int(rng.integers(int(nf * 0.35), int(nf * 0.65)))
        reach_a, reach_b = (xc - wa) // va, (width - xc - wb) // vb  # frames before a wall is hit
        reach = max(1, min(reach_a, reach_b))
        spans = []
        for _ in range(2):
            first = max(0, c - reach, c - int(rng.integers(min_len // 2 + 1, nf)))
            last = min(nf - 1, c + reach, c + int(rng.integers(min_len // 2 + 1, nf)))
            spans.append((first, last))
        # Boxes must touch exactly at c: place the cells from the masks' tight extents.
        ra, lb = _extent(shapes[0], sizes[0])[2], _extent(shapes[1], sizes[1])[0]
        ta = Track(colors[0], shapes[0], sizes[0], *spans[0], tuple(
            (xc - ra - va * abs(c - f), y[0]) for f in range(spans[0][0], spans[0][1] + 1)))
        tb = Track(colors[1], shapes[1], sizes[1], *spans[1], tuple(
            (xc - lb + vb * abs(c - f), y[1]) for f in range(spans[1][0], spans[1][1] + 1)))
        tracks += [(0, ta), (1, tb)]
        collision = (c, 0, 1)
    ordered = tuple(t for _, t in sorted(tracks, key=lambda p: p[0]))
    bg = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return Clip(width, height, fps, nf, bg, ordered, collision)


def render_frame(clip: Clip, frame: int) -> Image.Image:
    """Frame `frame` as an RGB image: every visible object pasted through its own mask."""
    im = Image.new("RGB", (clip.width, clip.height), clip.background)
    for t in clip.visible(frame):
        im.paste(COLORS[t.color], t.xy[frame - t.first], t.mask)
    return im
