"""Scenes built *for* a question: the generator picks the answer first, then draws a scene where it holds.

Drawing the scene around the question (rather than asking about a random scene) guarantees every
question is answerable and unambiguous: the queried object is the only one of its kind, relations are
separated by a clear gap, counted objects are the only matches. Used by `image_scenes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from mmreason.data_builders.draw import (ALL_SHAPES, BACKGROUNDS, COLORS, Item, draw_shape, paste, pie_mask,
                                         place, text_mask)
from mmreason.data_builders.gcot import Evidence

WORDS = ("apple", "river", "cloud", "tiger", "lemon", "piano", "rocket", "garden", "silver", "candle", "maple",
         "ocean", "pepper", "violin", "meadow", "falcon", "copper", "harbor", "thunder", "willow")
CATEGORIES = ("north", "south", "east", "west", "alpha", "beta", "gamma", "delta")
LABEL_GRAY = (90, 90, 90)  # chart axes and category names: not an object colour, never in a GT box test
PASTELS = ((225, 232, 214), (214, 226, 236), (236, 224, 214), (228, 222, 238), (220, 236, 232))
COLOR_NAMES = tuple(COLORS)


class SceneFailed(Exception):
    """Placement ran out of room; the caller retries with the same generator (still deterministic)."""


@dataclass(frozen=True)
class SceneQA:
    image: Image.Image
    items: tuple[Item, ...]
    question: str
    answer: str
    targets: tuple[Item, ...]  # GT boxes: what the answer is about
    evidence: tuple[Evidence, ...]  # rationale regions with what each shows
    plan: str
    conclusion: str


def _choice(rng, seq, exclude=()):
    pool = [s for s in seq if s not in exclude]
    return pool[int(rng.integers(len(pool)))]


def _canvas(rng, lo=384, hi=768):
    w, h = (int(rng.integers(lo // 32, hi // 32 + 1)) * 32 for _ in range(2))
    return Image.new("RGB", (w, h), BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])


def _shape_size(rng, shape, side_lo, side_hi):
    s = int(rng.integers(side_lo, side_hi + 1))
    if shape in ("circle", "square"):
        return (s, s)
    return (s, max(8, int(round(s * rng.uniform(0.8, 1.2)))))


def _draw_specs(rng, canvas, specs, taken, *, side=(28, 96), region=None, margin=6):
    """Place and draw [(shape, colour)] at random free spots; raises SceneFailed when out of room."""
    out = []
    for shape, color in specs:
        size = _shape_size(rng, shape, *side)
        box = place(rng, *canvas.size, size, taken, region=region, margin=margin)
        if box is None:
            raise SceneFailed(shape)
        taken.append(box)
        out.append(draw_shape(canvas, shape, color, box))
    return out


def _distractors(rng, k, bad):
    """k (shape, colour) pairs for which `bad(shape, colour)` is False."""
    out = []
    while len(out) < k:
        s, c = _choice(rng, ALL_SHAPES), _choice(rng, COLOR_NAMES)
        if not bad(s, c):
            out.append((s, c))
    return out


def _scale(canvas):
    return min(canvas.size) / 512


# ------------------------------------------------------------------------------------------ shapes
def q_color(rng):
    cv, shape = _canvas(rng), _choice(rng, ALL_SHAPES)
    color = _choice(rng, COLOR_NAMES)
    sc = _scale(cv)
    specs = [(shape, color)] + _distractors(rng, int(rng.integers(2, 7)), lambda s, c: s == shape)
    items = _draw_specs(rng, cv, specs, [], side=(int(28 * sc), int(90 * sc)))
    t = items[0]
    return SceneQA(cv, tuple(items), f"What colour is the {shape}?", color, (t,),
                   (Evidence(f"the {shape}", t.box, f"it is filled with {color}"),),
                   f"The question is about the {shape}, so I first locate it",
                   f"The region shows a {color} {shape} and no other {shape} is present, "
                   f"so the colour is {color}")


def q_shape(rng):
    cv, shape, color = _canvas(rng), _choice(rng, ALL_SHAPES), _choice(rng, COLOR_NAMES)
    sc = _scale(cv)
    specs = [(shape, color)] + _distractors(rng, int(rng.integers(2, 7)), lambda s, c: c == color)
    items = _draw_specs(rng, cv, specs, [], side=(int(28 * sc), int(90 * sc)))
    t = items[0]
    return SceneQA(cv, tuple(items), f"What shape is the {color} object?", shape, (t,),
                   (Evidence(f"the {color} object", t.box, f"it is a {shape}"),),
                   f"I need the only {color} object in the image",
                   f"The {color} object is a {shape}, so the answer is {shape}")


def q_count(rng):
    cv = _canvas(rng, 448, 768)
    shape, color = _choice(rng, ALL_SHAPES), _choice(rng, COLOR_NAMES)
    mode = int(rng.integers(3))
    if mode == 0:
        match, noun = (lambda s, c: s == shape and c == color), f"{color} {shape}"
    elif mode == 1:
        match, noun = (lambda s, c: s == shape), shape
    else:
        match, noun = (lambda s, c: c == color), f"{color} object"
    k = int(rng.integers(1, 7))
    targets = [(shape, color if mode != 1 else _choice(rng, COLOR_NAMES)) if mode != 2
               else (_choice(rng, ALL_SHAPES), color) for _ in range(k)]
    specs = targets + _distractors(rng, int(rng.integers(2, 6)), match)
    sc = _scale(cv)
    items = _draw_specs(rng, cv, specs, [], side=(int(24 * sc), int(64 * sc)))
    hits = tuple(items[:k])
    plural = noun + ("es" if noun.endswith(("s", "x")) else "s")  # crosses, boxes
    ev = tuple(Evidence(f"{noun} {i + 1}", it.box) for i, it in enumerate(hits))
    return SceneQA(cv, tuple(items), f"How many {plural} are there in the image?", str(k), hits, ev,
                   f"I will find every {noun} one by one",
                   f"I found {k} {plural if k != 1 else noun} and nothing else matches, so the answer is {k}")


_REL = {"left of": (0, True), "right of": (0, False), "above": (1, True), "below": (1, False)}


def q_relation(rng):
    cv = _canvas(rng)
    w, h = cv.size
    rel = _choice(rng, tuple(_REL))
    axis, a_first = _REL[rel]
    yes = bool(rng.integers(2))
    (sa, ca), (sb, cb) = [(_choice(rng, ALL_SHAPES), c) for c in rng.permutation(COLOR_NAMES)[:2].tolist()]
    side = w if axis == 0 else h
    split = int(rng.integers(int(side * 0.4), int(side * 0.6)))
    gap, m = 12, 6
    first = (m, m, split - gap, h - m) if axis == 0 else (m, m, w - m, split - gap)
    second = (split + gap, m, w - m, h - m) if axis == 0 else (m, split + gap, w - m, h - m)
    # "A rel B" is true when A sits in the `first` half for left/above, in `second` for right/below.
    a_region, b_region = (first, second) if a_first == yes else (second, first)
    sc = _scale(cv)
    taken: list = []
    a = _draw_specs(rng, cv, [(sa, ca)], taken, side=(int(30 * sc), int(80 * sc)), region=a_region)[0]
    b = _draw_specs(rng, cv, [(sb, cb)], taken, side=(int(30 * sc), int(80 * sc)), region=b_region)[0]
    others = _draw_specs(rng, cv, _distractors(rng, int(rng.integers(1, 5)),
                                               lambda s, c: (s, c) in ((sa, ca), (sb, cb))), taken,
                         side=(int(24 * sc), int(64 * sc)))
    la, lb = f"the {ca} {sa}", f"the {cb} {sb}"
    lo, hi = ("x", ("ends", "starts")) if axis == 0 else ("y", ("ends", "starts"))
    p, q = (a, b) if (a_first == yes) else (b, a)
    pl, ql = (la, lb) if p is a else (lb, la)
    fact = f"{pl[:1].upper()}{pl[1:]} {hi[0]} at {lo}={p.box[2 + axis]} and {ql} {hi[1]} at {lo}={q.box[axis]}"
    ans = "yes" if yes else "no"
    return SceneQA(cv, (a, b, *others), f"Is {la} {rel} {lb}? Answer yes or no.", ans, (a, b),
                   (Evidence(la, a.box), Evidence(lb, b.box)),
                   f"I need to compare the positions of {la} and {lb}",
                   f"{fact}, so the statement '{la} is {rel} {lb}' is {'true' if yes else 'false'}: {ans}")


def q_text(rng):
    cv = _canvas(rng)
    sc = _scale(cv)
    colors = rng.permutation(COLOR_NAMES)[: int(rng.integers(2, 4))].tolist()
    words = rng.permutation(WORDS)[: len(colors)].tolist()
    taken: list = []
    texts = []
    for word, color in zip(words, colors):
        m = text_mask(word, int(rng.integers(int(20 * sc), int(36 * sc) + 1)))
        box = place(rng, *cv.size, m.size, taken)
        if box is None:
            raise SceneFailed(word)
        taken.append(box)
        texts.append(paste(cv, m, box[:2], color, "text", word, color))
    others = _draw_specs(rng, cv, _distractors(rng, int(rng.integers(1, 4)), lambda s, c: c == colors[0]), taken,
                         side=(int(24 * sc), int(64 * sc)))
    t = texts[0]
    return SceneQA(cv, (*texts, *others), f"What word is written in {colors[0]}?", words[0], (t,),
                   (Evidence(f"the {colors[0]} text", t.box, f'it reads "{words[0]}"'),),
                   f"I look for text written in {colors[0]}",
                   f'The {colors[0]} text reads "{words[0]}", so the answer is {words[0]}')


def q_ground(rng):
    qa = q_color(rng)
    t = qa.targets[0]
    box = "[" + ", ".join(str(v) for v in t.box) + "]"
    return SceneQA(qa.image, qa.items, f"Locate the {t.label} and give its bounding box.", box, (t,),
                   (Evidence(f"the {t.label}", t.box),), f"I search the image for the {t.label}",
                   f"The {t.label} is the only such object, so that box is the answer")


def q_refer(rng, *, side=(112, 112), count=(2, 4), colors=COLOR_NAMES, shapes=ALL_SHAPES):
    """Referring: `count` shapes ([lo, hi]), no two with the same colour AND shape; the question names one by both.

    Two objects may share a colour or a shape, so neither word alone always picks the target: the model
    must bind both words to one object. `side` is the canvas side in pixels ([lo, hi], a multiple of 28
    keeps Qwen2.5-VL's resized frame equal to the original).
    """
    s = int(rng.integers(side[0], side[1] + 1))
    cv = Image.new("RGB", (s, s), BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    k = int(rng.integers(count[0], count[1] + 1))
    pairs = [(sh, c) for c in colors for sh in shapes]
    specs = [pairs[i] for i in rng.permutation(len(pairs))[:k]]
    margin = max(2, s // 40)
    items = _draw_specs(rng, cv, specs, [], side=(max(8, s * 16 // 100), max(9, s * 30 // 100)), margin=margin)
    t = items[int(rng.integers(len(items)))]
    box = "[" + ", ".join(str(v) for v in t.box) + "]"
    same = [it for it in items if it is not t and (it.color == t.color or it.name == t.name)]
    why = (f"; the other {'objects differ' if not same else 'object sharing a word differs'} in colour or shape"
           if len(items) > 1 else "")
    return SceneQA(cv, tuple(items), f"Where is the {t.label}?", box, (t,),
                   (Evidence(f"the {t.label}", t.box),), f"I look for the {t.label}",
                   f"Only this object is a {t.label}{why}, so its box is the answer")


# ------------------------------------------------------------------------------------------ charts
def _rect(w, h):
    return Image.new("L", (w, h), 255)


def _bar_chart(rng):
    cv = _canvas(rng, 448, 768)
    w, h = cv.size
    sc = _scale(cv)
    k = int(rng.integers(3, 7))
    cats = rng.permutation(CATEGORIES)[:k].tolist()
    values = (rng.permutation(20)[:k] + 1).tolist()  # distinct, so "the tallest" is unique
    color = _choice(rng, COLOR_NAMES, exclude=("black",))
    left, top, bottom = int(30 * sc), int(44 * sc), int(44 * sc)
    base, plot_h, slot = h - bottom, h - top - bottom, (w - 2 * left) // k
    cv.paste(LABEL_GRAY, (left - 4, base, w - left + 4, base + 2))
    bars, vals, names = [], [], []
    fs = max(12, int(16 * sc))
    for i, (cat, v) in enumerate(zip(cats, values)):
        bw, bh = int(slot * 0.6), max(4, int(round(plot_h * v / max(values))))
        x = left + i * slot + (slot - bw) // 2
        bars.append(paste(cv, _rect(bw, bh), (x, base - bh), color, "bar", cat, color))
        vm = text_mask(str(v), fs)
        at = (x + (bw - vm.size[0]) // 2, base - bh - vm.size[1] - 5)
        vals.append(paste(cv, vm, at, "black", "text", str(v), "black"))
        cm = text_mask(cat, fs)
        names.append(paste(cv, cm, (x + (bw - cm.size[0]) // 2, base + 8), "black", "text", cat, "black"))
    return cv, cats, values, bars, vals, names


def q_chart_max(rng):
    cv, cats, values, bars, vals, names = _bar_chart(rng)
    i = int(np.argmax(values))
    return SceneQA(cv, (*bars, *vals, *names), "Which category has the tallest bar in the chart?", cats[i],
                   (bars[i],),
                   (Evidence("the tallest bar", bars[i].box, f"its value is {values[i]}"),
                    Evidence("the label under it", names[i].box, f'it reads "{cats[i]}"')),
                   "I compare the bar heights and read the label of the tallest one",
                   f"The tallest bar reaches {values[i]} and is labelled {cats[i]}, so the answer is {cats[i]}")


def q_chart_value(rng):
    cv, cats, values, bars, vals, names = _bar_chart(rng)
    i = int(rng.integers(len(cats)))
    return SceneQA(cv, (*bars, *vals, *names), f"What value is written above the {cats[i]} bar?", str(values[i]),
                   (vals[i],),
                   (Evidence(f"the {cats[i]} bar", bars[i].box, f"it is labelled {cats[i]}"),
                    Evidence("the number above it", vals[i].box, f"it reads {values[i]}")),
                   f"I find the bar labelled {cats[i]} and read the number above it",
                   f"The number above the {cats[i]} bar is {values[i]}, so the answer is {values[i]}")


def q_pie_largest(rng):
    cv = _canvas(rng, 448, 768)
    w, h = cv.size
    k = int(rng.integers(3, 6))
    while True:  # a clear winner: the largest share beats the runner-up by 5 points
        shares = rng.dirichlet(np.ones(k)) * 100
        top2 = np.sort(shares)[-2:]
        if top2[1] - top2[0] >= 5:
            break
    colors = rng.permutation(COLOR_NAMES)[:k].tolist()
    d = int(min(w, h) * rng.uniform(0.55, 0.8))
    x0, y0 = int(rng.integers(4, w - d - 3)), int(rng.integers(4, h - d - 3))
    label = np.full((d, d), -1, dtype=np.int16)  # slice index per pixel: later slices win shared edges
    angle = float(rng.uniform(0, 360))
    for i, s in enumerate(shares):
        label[np.asarray(pie_mask(d, angle, angle + s * 3.6)) > 0] = i
        angle += s * 3.6
    items = []
    for i, c in enumerate(colors):
        ys, xs = np.nonzero(label == i)
        cv.paste(COLORS[c], (x0, y0), Image.fromarray(((label == i) * 255).astype(np.uint8)))
        items.append(Item("slice", c, c, (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1,
                                          y0 + int(ys.max()) + 1)))
    i = int(np.argmax(shares))
    return SceneQA(cv, tuple(items), "What colour is the largest slice of the pie chart?", colors[i], (items[i],),
                   (Evidence("the largest slice", items[i].box, f"it is {colors[i]}"),),
                   "I compare the slices of the pie and find the largest one",
                   f"The largest slice covers about {round(shares[i])} percent and is {colors[i]}, "
                   f"so the answer is {colors[i]}")


# -------------------------------------------------------------------------- high resolution (V*-like)
def _hr_canvas(rng, side):
    long_side = int(rng.integers(side[0], side[1] + 1))
    ar = (1.0, 4 / 3, 3 / 4, 16 / 9, 9 / 16)[int(rng.integers(5))]
    w, h = (long_side, int(long_side / ar)) if ar >= 1 else (int(long_side * ar), long_side)
    cv = Image.new("RGB", (w // 8 * 8, h // 8 * 8), BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    for _ in range(int(rng.integers(20, 50))):  # pale blocks: clutter that is never an object colour
        bw, bh = (int(rng.uniform(0.05, 0.3) * s) for s in cv.size)
        x, y = int(rng.integers(0, cv.size[0] - bw)), int(rng.integers(0, cv.size[1] - bh))
        cv.paste(PASTELS[int(rng.integers(len(PASTELS)))], (x, y, x + bw, y + bh))
    return cv


def _target_side(rng, cv):
    return max(14, int(round(rng.uniform(0.01, 0.02) * max(cv.size))))


def _clutter(rng, cv, taken, forbidden_shapes=(), forbidden_colors=()):
    """Many small distractors (1-4 % of the short side) that never repeat the target's distinguishing trait."""
    w, h = cv.size
    short = min(w, h)
    for _ in range(min(900, w * h // (130 * 130))):
        shape = _choice(rng, ALL_SHAPES, exclude=forbidden_shapes)
        color = _choice(rng, COLOR_NAMES, exclude=forbidden_colors)
        size = _shape_size(rng, shape, max(10, int(0.01 * short)), max(14, int(0.04 * short)))
        box = place(rng, w, h, size, taken, margin=4, tries=8)
        if box is not None:
            taken.append(box)
            draw_shape(cv, shape, color, box)


def q_small_color(rng, side):
    cv = _hr_canvas(rng, side)
    shape, color = _choice(rng, ALL_SHAPES), _choice(rng, COLOR_NAMES)
    s = _target_side(rng, cv)
    taken: list = []
    t = _draw_specs(rng, cv, [(shape, color)], taken, side=(s, s), margin=20)[0]
    _clutter(rng, cv, taken, forbidden_shapes=(shape,))
    return SceneQA(cv, (t,), f"What is the colour of the {shape}?", color, (t,),
                   (Evidence(f"the {shape}", t.box, f"it is {color}"),),
                   f"The image is large and the {shape} is small, so I need to find it first",
                   f"The only {shape} in the image is {color}, so the answer is {color}")


def q_small_relative(rng, side):
    cv = _hr_canvas(rng, side)
    w, h = cv.size
    sa, sb = rng.permutation(ALL_SHAPES)[:2].tolist()
    ca, cb = _choice(rng, COLOR_NAMES), _choice(rng, COLOR_NAMES)
    left = bool(rng.integers(2))
    split = int(rng.integers(int(w * 0.3), int(w * 0.7)))
    regions = [(20, 20, split - 40, h - 20), (split + 40, 20, w - 20, h - 20)]
    taken: list = []
    a = _draw_specs(rng, cv, [(sa, ca)], taken, side=(_target_side(rng, cv),) * 2, region=regions[not left])[0]
    b = _draw_specs(rng, cv, [(sb, cb)], taken, side=(_target_side(rng, cv),) * 2, region=regions[left])[0]
    _clutter(rng, cv, taken, forbidden_shapes=(sa, sb))
    ans = "left" if left else "right"
    return SceneQA(cv, (a, b), f"Is the {ca} {sa} on the left or right side of the {cb} {sb}?", ans, (a, b),
                   (Evidence(f"the {ca} {sa}", a.box), Evidence(f"the {cb} {sb}", b.box)),
                   f"Both objects are small in a large image, so I locate the {sa} and the {sb} first",
                   f"The {sa} spans x={a.box[0]} to x={a.box[2]} and the {sb} spans "
                   f"x={b.box[0]} to x={b.box[2]}, so the {sa} is on the {ans} side")


def q_small_text(rng, side):
    cv = _hr_canvas(rng, side)
    colors = rng.permutation(COLOR_NAMES)[: int(rng.integers(2, 5))].tolist()
    words = rng.permutation(WORDS)[: len(colors)].tolist()
    taken: list = []
    texts = []
    for word, color in zip(words, colors):
        # size the font so the word spans 1.2-2.5 % of the long side: small, like a V* target
        width = rng.uniform(0.012, 0.025) * max(cv.size)
        m = text_mask(word, max(14, int(width * 100 / text_mask(word, 100).size[0])))  # 14 px: still legible
        box = place(rng, *cv.size, m.size, taken, margin=20)
        if box is None:
            raise SceneFailed(word)
        taken.append(box)
        texts.append(paste(cv, m, box[:2], color, "text", word, color))
    _clutter(rng, cv, taken, forbidden_colors=(colors[0],))
    t = texts[0]
    return SceneQA(cv, tuple(texts), f"What word is written in {colors[0]}?", words[0], (t,),
                   (Evidence(f"the {colors[0]} text", t.box, f'it reads "{words[0]}"'),),
                   f"The text is tiny in a large image, so I first find the {colors[0]} writing",
                   f'The {colors[0]} text reads "{words[0]}", so the answer is {words[0]}')


GENERATORS = {
    "color": q_color, "shape": q_shape, "count": q_count, "relation": q_relation, "text": q_text,
    "ground": q_ground, "refer": q_refer, "chart_max": q_chart_max, "chart_value": q_chart_value, "pie_largest": q_pie_largest,
    "small_color": q_small_color, "small_relative": q_small_relative, "small_text": q_small_text,
}
HIGHRES = ("small_color", "small_relative", "small_text")


def generate(rng: np.random.Generator, qtype: str, *, highres_side: tuple[int, int] = (2000, 4000),
             refer: dict | None = None) -> SceneQA:
    """A scene and question of `qtype`; retries placement failures with the same generator.

    `refer` holds the options of the ``refer`` question (`q_refer`'s keywords).
    """
    fn = GENERATORS[qtype]
    for _ in range(50):
        try:
            if qtype == "refer":
                return fn(rng, **(refer or {}))
            return fn(rng, highres_side) if qtype in HIGHRES else fn(rng)
        except SceneFailed:
            continue
    raise RuntimeError(f"could not place a {qtype} scene in 50 attempts")
