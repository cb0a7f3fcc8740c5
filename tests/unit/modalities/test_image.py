"""Image adapter: decoding, orientation, colour modes, per-family sizing, crops, and bad files."""

import io

import numpy as np
import pytest
from PIL import Image

from mmreason.errors import MediaError
from mmreason.families import FAMILIES
from mmreason.geometry import ImageFrame, box_from_model, box_to_model
from mmreason.modalities import MODALITIES, get_loader, load_dataset_media, load_part, load_sample_media
from mmreason.modalities.image import LoadedImage, crop, image_budget, load_image, to_rgb, zoom


def _jpeg_with_orientation(path, orientation):
    # 40 wide x 20 high as stored, red block in the stored top-left corner
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:10, :10] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    _jpeg_with_orientation(path, 6)  # 6 = rotate 90 degrees clockwise for display
    loaded = load_image(path, "qwen2_5_vl")
    # The upright image is 20 wide x 40 high, and the stored top-left corner is now top-right.
    assert (loaded.frame.width, loaded.frame.height) == (20, 40)
    up = np.asarray(loaded.original)
    assert up[2, -3, 0] > 200 and up[2, -3, 1] < 60
    assert up[2, 2, 0] < 60


def test_colour_modes_become_rgb(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (0, 0, 255, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    out = to_rgb(rgba)
    assert out.mode == "RGB" and out.getpixel((5, 5)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (0, 0, 255)

    grey16 = Image.fromarray(np.full((8, 8), 40000, np.uint16))
    path = tmp_path / "deep.png"
    grey16.save(path)
    assert Image.open(path).mode.startswith("I")
    got = load_image(path, "qwen2_vl").original
    assert got.mode == "RGB" and got.getpixel((3, 3)) == (155, 155, 155)  # 40000 * 255 // 65535

    pal = Image.new("P", (8, 8))
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.info["transparency"] = 0
    out = to_rgb(pal)
    assert out.getpixel((1, 1)) == (10, 200, 30) and out.getpixel((4, 4)) == (255, 255, 255)

    assert to_rgb(Image.new("L", (4, 4), 77)).getpixel((0, 0)) == (77, 77, 77)
    assert to_rgb(Image.new("CMYK", (4, 4))).mode == "RGB"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sizes_follow_the_family_rule(family):
    fam = FAMILIES[family]
    loaded = load_image(Image.new("RGB", (640, 480)), family)
    assert loaded.image.size == (loaded.frame.resized_width, loaded.frame.resized_height)
    assert loaded.image.width % fam.factor == 0 and loaded.image.height % fam.factor == 0
    assert loaded.frame == ImageFrame.for_family(640, 480, family)
    small = load_image(Image.new("RGB", (64, 48)), family, max_pixels=64 * 64, min_pixels=32 * 32)
    assert small.image.width * small.image.height <= 64 * 64


def test_budget_precedence_part_then_recipe_then_family():
    fam = FAMILIES["qwen3_vl"]
    assert image_budget({}, "qwen3_vl") == (fam.min_pixels, fam.max_pixels)
    assert image_budget({}, "qwen3_vl", {"max_pixels": 128 * 128, "min_pixels": 32 * 32}) == (1024, 16384)
    recipe = {"max_pixels": 128 * 128, "min_pixels": 2}
    assert image_budget({"max_pixels": 64 * 64, "min_pixels": None}, "qwen3_vl", recipe) == (2, 4096)
    with pytest.raises(ValueError, match="min_pixels"):
        image_budget({"min_pixels": 10, "max_pixels": 5}, "qwen2_vl")


def test_sources_path_bytes_pil_and_parts(tmp_path):
    img = Image.new("RGB", (64, 64), (10, 20, 30))
    img.save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    for src in (tmp_path / "a.png", str(tmp_path / "a.png"), data, img):
        loaded = load_image(src, "qwen2_vl", max_pixels=56 * 56, min_pixels=28 * 28)
        assert loaded.original.getpixel((1, 1)) == (10, 20, 30)
    part = {"type": "image", "image": "a.png", "max_pixels": 56 * 56, "min_pixels": 28 * 28}
    loaded = load_part(part, root=tmp_path, family="qwen2_vl", sample_id="s1")
    assert isinstance(loaded, LoadedImage) and loaded.path == str(tmp_path / "a.png")
    assert loaded.image.size == (56, 56)
    shot = load_part({"type": "screenshot", "screenshot": "a.png"}, root=tmp_path, family="qwen2_vl",
                     options={"image": {"max_pixels": 28 * 28 * 4}})
    assert shot.image.size == (56, 56)  # the image options apply to screenshots
    exact = load_part({"type": "image", "image": "a.png", "resized_width": 100, "resized_height": 60},
                      root=tmp_path, family="qwen2_5_vl")
    assert exact.image.size == (112, 56)
    assert MODALITIES["screenshot"] == MODALITIES["image"] and callable(get_loader("image"))


def _bad_files(tmp_path):
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good, "JPEG")
    data = good.getvalue()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "head.jpg").write_bytes(data[:300])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    return ["trunc.jpg", "head.jpg", "empty.png", "text.png", "missing.png"]


def test_bad_images_raise_media_error_naming_file_and_sample(tmp_path):
    for name in _bad_files(tmp_path):
        with pytest.raises(MediaError) as info:
            load_part({"type": "image", "image": name}, root=tmp_path, family="qwen2_vl", sample_id="row-7")
        assert name in str(info.value) and "row-7" in str(info.value)
        assert info.value.sample_id == "row-7"
    with pytest.raises(MediaError, match="aspect ratio"):
        load_image(Image.new("RGB", (2000, 4)), "qwen2_vl", sample_id="thin")


def test_a_truncated_file_raises_even_when_another_library_lets_pil_pad_it(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing lmms-eval does
    for name in _bad_files(tmp_path):
        with pytest.raises(MediaError, match="row-8"):
            load_part({"type": "image", "image": name}, root=tmp_path, family="qwen2_vl", sample_id="row-8")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the other library's setting is left as it was


def test_dataset_loader_policy_raise_or_skip_with_count(tmp_path):
    bad = _bad_files(tmp_path)
    Image.new("RGB", (32, 32)).save(tmp_path / "ok.png")
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": [{"type": "image", "image": name},
                                                                      {"type": "text", "text": "?"}]}]}
            for i, name in enumerate(["ok.png", *bad, "ok.png"])]
    with pytest.raises(MediaError, match="r1"):
        load_dataset_media(rows, tmp_path, "qwen2_vl", on_error="raise")
    kept, report = load_dataset_media(rows, tmp_path, "qwen2_vl", on_error="skip")
    assert [row["id"] for row, _ in kept] == ["r0", f"r{len(bad) + 1}"]
    assert report.skipped == len(bad) and report.loaded == 2 and len(report.errors) == len(bad)
    assert load_sample_media(rows[1], tmp_path, "qwen2_vl", on_error="skip") is None
    media = load_sample_media(rows[0], tmp_path, "qwen2_vl")
    assert len(media.items) == 1 and isinstance(media.frames[0], ImageFrame)
    with pytest.raises(ValueError):
        load_sample_media(rows[0], tmp_path, "qwen2_vl", on_error="ignore")


def test_crop_clamps_and_maps_frames():
    arr = np.zeros((50, 100, 3), np.uint8)
    arr[10:20, 30:40] = 255
    img = Image.fromarray(arr)
    piece, box = crop(img, (30, 10, 40, 20))
    assert box == (30.0, 10.0, 40.0, 20.0) and np.asarray(piece).min() == 255
    piece, box = crop(img, (-10, -5, 130, 80))
    assert box == (0.0, 0.0, 100.0, 50.0) and piece.size == (100, 50)
    _, box = crop(img, (300, 100, 400, 200), frame="norm1000")  # relative coordinates
    assert box == (30.0, 5.0, 40.0, 10.0)
    _, box = crop(img, (50, 25, 50, 25), min_size=8)  # a point grows to a minimum crop
    assert box == (46.0, 21.0, 54.0, 29.0)
    _, box = crop(img, (98, 48, 99, 49), min_size=8)  # ... kept inside the image
    assert box == (92.0, 42.0, 100.0, 50.0)
    for bad in [(200, 200, 300, 300), (float("nan"), 0, 1, 1), (1, 2, 3)]:
        with pytest.raises(ValueError):
            crop(img, bad)

    loaded = load_image(img, "qwen2_5_vl")  # 100x50 -> 112x56 (resized frame)
    resized_box = box_to_model((30, 10, 40, 20), "qwen2_5_vl", loaded.frame)
    piece, box = crop(loaded, resized_box, frame="resized")
    assert box == (30.0, 10.0, 40.0, 20.0) and np.asarray(piece).min() == 255  # cut from the original
    assert box_from_model(resized_box, "qwen2_5_vl", loaded.frame) == pytest.approx((30, 10, 40, 20))
    big, box = zoom(img, (30, 10, 40, 20), scale=3)
    assert big.size == (30, 30) and box == (30.0, 10.0, 40.0, 20.0)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen3_vl"])
@pytest.mark.parametrize("size", [(640, 480), (33, 900), (1500, 1100)])
def test_sizes_match_qwen_vl_utils(family, size):
    from qwen_vl_utils.vision_process import fetch_image

    fam = FAMILIES[family]
    img = Image.new("RGB", size)
    theirs = fetch_image({"image": img, "min_pixels": fam.min_pixels, "max_pixels": 256 * 256},
                         image_patch_size=fam.patch_size)
    assert load_image(img, family, max_pixels=256 * 256).image.size == theirs.size


def test_an_image_past_the_pixel_limit_is_refused_before_decoding(tmp_path):
    # 12000 x 12000 passed with only PIL's warning (1-2 GB peak while decoding)
    Image.new("1", (12000, 12000)).save(tmp_path / "huge.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "ok.png")
    rows = [{"id": i, "messages": [{"role": "user", "content": [{"type": "image", "image": f}]}]}
            for i, f in (("big-1", "huge.png"), ("fine", "ok.png"))]
    with pytest.raises(MediaError, match=r"sample 'big-1'.*huge\.png: image is 12000x12000 = 144,000,000 "
                                         r"pixels, over the 89,478,485-pixel limit.*MAX_IMAGE_PIXELS"):
        load_sample_media(rows[0], tmp_path, "qwen2_vl")
    kept, report = load_dataset_media(rows, tmp_path, "qwen2_vl", on_error="skip")
    assert [r["id"] for r, _ in kept] == ["fine"] and report.skipped == 1


def test_a_part_outside_the_dataset_root_is_refused_unless_allowed(tmp_path, monkeypatch):
    (tmp_path / "ds").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "ds" / "ok.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "private.png")
    rows = [{"id": i, "messages": [{"role": "user", "content": [{"type": "image", "image": f}]}]}
            for i, f in (("fine", "ok.png"), ("up-1", "../private.png"), ("abs-2", str(tmp_path / "private.png")))]
    for row in rows[1:]:
        with pytest.raises(MediaError, match=f"sample '{row['id']}'.*private\\.png: outside the dataset root"):
            load_sample_media(row, tmp_path / "ds", "qwen2_vl")
    kept, report = load_dataset_media(rows, tmp_path / "ds", "qwen2_vl", on_error="skip")
    assert [r["id"] for r, _ in kept] == ["fine"] and report.skipped == 2
    monkeypatch.setenv("MMREASON_ALLOW_MEDIA_OUTSIDE_ROOT", "1")
    assert load_sample_media(rows[1], tmp_path / "ds", "qwen2_vl") is not None
