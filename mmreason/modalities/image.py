"""Images (and screenshots) into what a Qwen-VL-style processor takes, with the frame the model saw.

An image is opened from a path, bytes or a PIL image; EXIF orientation is applied (the pixels a person
sees are the pixels boxes refer to); RGBA/LA/palette transparency is composited on white, greyscale and
16-bit images become 8-bit RGB. It is then resized by the family's ``smart_resize`` rule, and the
resulting ``ImageFrame`` (original and resized size) travels with it, so a box the model emits maps back
to original pixels through ``mmreason.geometry``.

The pixel budget comes from the content part (``min_pixels``/``max_pixels``), else the recipe
(``defaults``), else the family table: the same precedence qwen-vl-utils uses for per-message keys.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from mmreason.errors import MediaError
from mmreason.families import Family, as_family
from mmreason.geometry import Box, ImageFrame, clip_box, convert_box, smart_resize
from mmreason.media_paths import resolve_media_path  # noqa: F401  (the adapters' import point)

ImageSource = Any  # str | os.PathLike | bytes | PIL.Image.Image | LoadedImage


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image resized for a family, its frame, and where it came from.

    `image` is what the processor receives (already at `frame.resized_*`); `original` is the upright RGB
    image at full resolution, kept so crops and zooms cut from real pixels rather than resized ones.
    """

    image: Image.Image
    frame: ImageFrame
    path: str | None = None
    original: Image.Image | None = None

    def as_parts(self, family: str | Family | None = None) -> list[dict]:
        """The content parts this media becomes in a chat (the collator's protocol): one image part."""
        return [{"type": "image", "image": self}]


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparency is composited on white, 16/32-bit greys are rescaled.

    >>> to_rgb(Image.new("RGBA", (2, 2), (255, 0, 0, 0))).getpixel((0, 0))
    (255, 255, 255)
    """
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # PIL's convert("RGB") clips these to 255 (a white image); 16-bit data needs scaling to 8 bits.
        arr = np.asarray(image).astype(np.int64)
        peak = 65535 if image.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255
        arr = np.clip(arr, 0, peak) * 255 // peak
        return Image.fromarray(arr.astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "F":
        arr = np.nan_to_num(np.asarray(image, dtype=np.float64))
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.round().astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info or image.mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def open_image(source: ImageSource, *, sample_id: object = None) -> tuple[Image.Image, str | None]:
    """Decode `source` fully into an upright RGB image; returns (image, path or None).

    Every failure (missing, empty, truncated, not an image, decompression bomb) is a `MediaError` that
    names the file and the sample. PIL decodes lazily, so `load()` is forced here: a truncated JPEG
    otherwise fails later, far from the file that caused it.
    """
    if isinstance(source, LoadedImage):
        return source.original or source.image, source.path
    path = None
    try:
        if isinstance(source, Image.Image):
            with _strict_decoding():
                source.load()
            img = ImageOps.exif_transpose(source)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise MediaError("<bytes>", "empty image data (0 bytes)", sample_id=sample_id)
            with _strict_decoding(), Image.open(io.BytesIO(bytes(source))) as handle:
                _check_size(handle, "<bytes>", sample_id)
                handle.load()
                img = ImageOps.exif_transpose(handle)
        elif not isinstance(source, (str, os.PathLike)):
            raise MediaError(repr(source)[:80], f"an image value must be a path, bytes or a PIL image, not "
                             f"{type(source).__name__}", sample_id=sample_id)
        else:
            path = os.fspath(source)
            if not os.path.isfile(path):
                raise MediaError(path, "image file not found", sample_id=sample_id)
            if os.path.getsize(path) == 0:
                raise MediaError(path, "empty image file (0 bytes)", sample_id=sample_id)
            with _strict_decoding(), Image.open(path) as handle:
                _check_size(handle, path, sample_id)
                handle.load()
                img = ImageOps.exif_transpose(handle)  # a copy, so it outlives the file handle
        return to_rgb(img), path
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        where = path if path is not None else "<in-memory image>"
        reason = f"cannot decode image ({type(exc).__name__}: {exc})"
        raise MediaError(where, reason, sample_id=sample_id) from exc


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    """Decode as PIL does by default, whatever another library set: a truncated file raises (lmms-eval, for
    one, sets PIL's process-wide ``LOAD_TRUNCATED_IMAGES`` on import, which would pad a cut JPEG with grey
    and lose the error). PIL's bomb warning is silenced: it covers exactly the images `_check_size` refuses
    with a better message."""
    lenient = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def _check_size(handle: Image.Image, where: str, sample_id: object) -> None:
    """Refuse, from the header alone, an image over PIL's pixel limit: PIL only warns up to twice that,
    and a 12000x12000 PNG then decodes to gigabytes. Raising `PIL.Image.MAX_IMAGE_PIXELS` lets it in."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and handle.width * handle.height > limit:
        raise MediaError(where, f"image is {handle.width}x{handle.height} = {handle.width * handle.height:,} "
                         f"pixels, over the {int(limit):,}-pixel limit; downscale it, or raise "
                         "PIL.Image.MAX_IMAGE_PIXELS to accept it", sample_id=sample_id)


def image_budget(
    part: Mapping[str, Any] | None, family: str | Family | None, defaults: Mapping[str, Any] | None = None
) -> tuple[int, int]:
    """(min_pixels, max_pixels): the part's keys, else the recipe's, else the family's.

    A row may ask for fewer pixels than the recipe, never more: its values are bounded by the recipe's
    `max_pixels` (else the family's), since one row's ``"min_pixels": 1e10`` would otherwise size a
    single image to tens of gigabytes. Past that ceiling, a value that is not a whole number >= 0, or
    min above max: `ValueError` (the loaders add the file and the sample).

    >>> image_budget({"max_pixels": 50176}, "qwen2_5_vl", {"max_pixels": 200704})
    (3136, 50176)
    >>> image_budget({"min_pixels": 1e10}, "qwen2_5_vl")
    Traceback (most recent call last):
    ValueError: the part's min_pixels 10000000000 is over the ceiling of 12845056 pixels (the recipe's ...
    """
    fam = _family(family)
    recipe_max = (defaults or {}).get("max_pixels")
    ceiling = fam.max_pixels if recipe_max is None else _pixels(recipe_max, "the recipe's max_pixels")
    out = []
    for key in ("min_pixels", "max_pixels"):
        value, owner = (part or {}).get(key), "the part's"
        if value is None:
            value, owner = (defaults or {}).get(key), "the recipe's"
        if value is None:
            value, owner = getattr(fam, key), f"the {fam.name} processor's"
        n = _pixels(value, f"{owner} {key}")
        if owner == "the part's" and n > ceiling:
            raise ValueError(f"the part's {key} {n} is over the ceiling of {ceiling} pixels (the recipe's "
                             f"max_pixels, else the {fam.name} processor's); lower it, or raise "
                             "model.max_pixels in the recipe")
        out.append(n)
    if out[0] > out[1]:
        raise ValueError(f"min_pixels {out[0]} exceeds max_pixels {out[1]}")
    return out[0], out[1]


def _pixels(value: Any, what: str) -> int:
    """A pixel count as an int; JSON may spell it 1e6 (a float), but never 2.5, a string or a bool."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value != int(value) or value < 0:
        raise ValueError(f"{what} must be a whole number of pixels, got {value!r}")
    return int(value)


def load_image(
    source: ImageSource, family: str | Family | None = None, *, min_pixels: int | None = None,
    max_pixels: int | None = None, resized_width: int | None = None, resized_height: int | None = None,
    sample_id: object = None, path: str | None = None,
) -> LoadedImage:
    """Open, convert and resize an image for `family` (Qwen2.5-VL when None).

    `resized_width`/`resized_height` ask for an exact size instead of a budget; like qwen-vl-utils, it is
    snapped to multiples of the family's factor.

    >>> out = load_image(Image.new("RGB", (640, 480)), "qwen2_5_vl")
    >>> out.image.size, (out.frame.width, out.frame.height)
    ((644, 476), (640, 480))
    """
    fam = _family(family)
    where = path or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<in-memory image>")
    try:  # checked before decoding: a bad budget should not cost a decode
        lo, hi = image_budget(None, fam, {"min_pixels": min_pixels, "max_pixels": max_pixels})
    except ValueError as exc:
        raise MediaError(where, str(exc), sample_id=sample_id) from None
    img, found = open_image(source, sample_id=sample_id)
    where = path or found or where
    try:
        if resized_width and resized_height:
            rh, rw = smart_resize(int(resized_height), int(resized_width), factor=fam.factor,
                                  min_pixels=4 * fam.factor**2, max_pixels=16384 * fam.factor**2)
            frame = ImageFrame(img.width, img.height, rw, rh)
        else:
            frame = ImageFrame.for_family(img.width, img.height, fam, min_pixels=lo, max_pixels=hi)
    except ValueError as exc:  # zero-sized or more elongated than the processor accepts
        raise MediaError(where, str(exc), sample_id=sample_id) from exc
    size = (frame.resized_width, frame.resized_height)
    resized = img if img.size == size else img.resize(size, Image.Resampling.BICUBIC)
    return LoadedImage(image=resized, frame=frame, path=path or found, original=img)


def load_part(
    part: Mapping[str, Any], *, root: str | os.PathLike | None = None, family: str | Family | None = None,
    sample_id: object = None, defaults: Mapping[str, Any] | None = None,
) -> LoadedImage:
    """Registry loader for ``image`` and ``screenshot`` parts: ``{"type": "image", "image": path, ...}``."""
    kind = part.get("type") or ("screenshot" if "screenshot" in part else "image")
    value = part.get(kind, part.get("image"))
    if value is None:
        raise MediaError("<missing>", f"{kind} part has no {kind!r} value", sample_id=sample_id)
    if isinstance(value, LoadedImage):
        return value
    path = None
    if isinstance(value, (str, os.PathLike)):
        path = str(resolve_media_path(value, root, sample_id=sample_id))
        value = path
    try:
        lo, hi = image_budget(part, family, defaults)
    except ValueError as exc:
        raise MediaError(path or f"<{kind}>", str(exc), sample_id=sample_id) from None
    return load_image(value, family, min_pixels=lo, max_pixels=hi, resized_width=part.get("resized_width"),
                      resized_height=part.get("resized_height"), sample_id=sample_id, path=path)


def crop(
    image: Image.Image | LoadedImage, box: Sequence[float], *, frame: str = "pixel",
    image_frame: ImageFrame | None = None, min_size: int = 1,
) -> tuple[Image.Image, Box]:
    """Cut `box` out of an image, clamped to its bounds; returns (crop, box actually cut, original pixels).

    `box` is in coordinate `frame` ("pixel", "resized", "norm1000", "norm1") of the image described by
    `image_frame` (taken from a `LoadedImage`; identity for a plain PIL image). A `LoadedImage` is cut
    from its full-resolution original. The box is rounded outwards to whole pixels and grown about its
    centre to at least `min_size` pixels a side. Raises `ValueError` for a non-finite box or one that
    lies wholly outside the image (tools turn that into an observation, not a crash).

    >>> crop(Image.new("RGB", (100, 50)), (90, 40, 130, 80))[1]
    (90.0, 40.0, 100.0, 50.0)
    """
    if isinstance(image, LoadedImage):
        image_frame = image_frame or image.frame
        source = image.original or image.image
        if image.original is None:  # only the resized pixels exist: cut there, report in original pixels
            pixel_box = _to_pixel_box(box, frame, image_frame)
            rbox = convert_box(pixel_box, "pixel", "resized", image_frame)
            piece, cut = crop(source, rbox, min_size=min_size)
            return piece, convert_box(cut, "resized", "pixel", image_frame)
    else:
        source = image
    image_frame = image_frame or ImageFrame.identity(source.width, source.height)
    if (image_frame.width, image_frame.height) != source.size:
        size = f"{image_frame.width}x{image_frame.height}"
        raise ValueError(f"image is {source.width}x{source.height}, but its frame says {size}")
    pixel_box = _to_pixel_box(box, frame, image_frame)
    if pixel_box[2] < 0 or pixel_box[3] < 0 or pixel_box[0] > source.width or pixel_box[1] > source.height:
        raise ValueError(f"box {tuple(box)} ({frame}) lies outside the {source.width}x{source.height} image")
    x1, y1, x2, y2 = clip_box(pixel_box, source.width, source.height)
    x1, y1, x2, y2 = math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)
    x1, x2 = _grow(x1, x2, min_size, source.width)
    y1, y2 = _grow(y1, y2, min_size, source.height)
    return source.crop((x1, y1, x2, y2)), (float(x1), float(y1), float(x2), float(y2))


def zoom(
    image: Image.Image | LoadedImage, box: Sequence[float], *, scale: float = 2.0, frame: str = "pixel",
    image_frame: ImageFrame | None = None, min_size: int = 1,
) -> tuple[Image.Image, Box]:
    """`crop`, then enlarge the crop `scale` times (bicubic); returns (zoomed image, box cut)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"zoom scale must be a positive number, got {scale}")
    piece, cut = crop(image, box, frame=frame, image_frame=image_frame, min_size=min_size)
    size = (max(1, round(piece.width * scale)), max(1, round(piece.height * scale)))
    return piece.resize(size, Image.Resampling.BICUBIC), cut


def _to_pixel_box(box: Sequence[float], frame: str, image_frame: ImageFrame) -> Box:
    if len(box) != 4:
        raise ValueError(f"a box needs 4 numbers, got {len(box)}")
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        raise ValueError(f"box {box!r} is not four numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box {tuple(box)} is not finite")
    x1, y1, x2, y2 = convert_box(values, frame, "pixel", image_frame)
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _grow(lo: int, hi: int, min_size: int, limit: int) -> tuple[int, int]:
    size = min(max(min_size, 1), limit)
    if hi - lo >= size:
        return lo, hi
    start = min(max(0, round((lo + hi - size) / 2)), limit - size)
    return start, start + size


def _family(family: str | Family | None) -> Family:
    return as_family("qwen2_5_vl" if family is None else family)
