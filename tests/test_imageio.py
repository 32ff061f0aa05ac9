"""Robust decoding: every mode becomes upright 8-bit RGB, and unusable files fail naming the file."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from PIL import Image

from course_utils.imageio import BadImageError, open_rgb, to_rgb


def error_for(path) -> str:
    """A regular expression matching the start of the BadImageError message for ``path``."""
    return "Cannot use image " + re.escape(str(path)) + ": "


def test_rgb_jpeg_keeps_size_and_colour(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (30, 20), (200, 100, 50)).save(path, quality=95)
    image = open_rgb(path)
    assert image.mode == "RGB" and image.size == (30, 20)
    assert np.abs(np.asarray(image).astype(int) - [200, 100, 50]).max() <= 3


def test_greyscale_and_bilevel_become_three_equal_channels(tmp_path):
    grey = np.array([[0, 60, 200, 255]] * 3, dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    image = open_rgb(tmp_path / "grey.png")
    assert image.mode == "RGB" and image.size == (4, 3)
    np.testing.assert_array_equal(np.asarray(image), np.repeat(grey[:, :, None], 3, axis=2))
    Image.fromarray(grey > 100).save(tmp_path / "bits.png")  # mode "1"
    assert Image.open(tmp_path / "bits.png").mode == "1"
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "bits.png"))[0, :, 0], [0, 0, 255, 255])


def test_cmyk_jpeg_is_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(path, quality=95)  # pure cyan ink
    assert Image.open(path).mode == "CMYK"
    pixel = np.asarray(open_rgb(path))[4, 4].astype(int)
    assert np.abs(pixel - [0, 255, 255]).max() <= 3


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.array([[[0, 0, 0, 0], [255, 0, 0, 255], [255, 0, 0, 128], [0, 0, 255, 255]]] * 2, dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    pixels = np.asarray(open_rgb(tmp_path / "rgba.png"))[0].astype(int)
    # Alpha 128 over white: 255 * 128/255 + 255 * 127/255 = 255 for red, 0 + 255 * 127/255 = 127 for green/blue.
    np.testing.assert_allclose(pixels, [[255, 255, 255], [255, 0, 0], [255, 127, 127], [0, 0, 255]], atol=1)
    la = np.array([[[0, 0], [100, 255]]] * 2, dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "la.png"))[0], [[255] * 3, [100] * 3])


def test_palette_images_with_and_without_transparency(tmp_path):
    palette = [0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (768 - 9)
    image = Image.new("P", (3, 2))
    image.putpalette(palette)
    image.putdata([0, 1, 2] * 2)
    image.save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "opaque.png"))[0], [[0, 0, 0], [255, 0, 0], [0, 0, 255]])
    image.info["transparency"] = 0
    image.save(tmp_path / "transparent.png", transparency=0)
    assert Image.open(tmp_path / "transparent.png").mode == "P"
    np.testing.assert_array_equal(
        np.asarray(open_rgb(tmp_path / "transparent.png"))[0], [[255, 255, 255], [255, 0, 0], [0, 0, 255]]
    )


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535, 1000]] * 2, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    # x / 257, rounded: 0, 1, 128, 255 and 1000 / 257 = 3.89 -> 4 (Pillow's own convert would give 255 for 1000).
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "deep.png"))[0, :, 1], [0, 1, 128, 255, 4])
    as_int32 = Image.fromarray(values.astype(np.int32), mode="I")
    np.testing.assert_array_equal(np.asarray(to_rgb(as_int32))[0, :, 0], [0, 1, 128, 255, 4])


def test_float_images_in_unit_range_are_scaled(tmp_path):
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(np.asarray(to_rgb(image))[0, :, 2], [0, 128, 255])
    image = Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(np.asarray(to_rgb(image))[0, :, 2], [0, 100, 255])


@pytest.mark.parametrize(("orientation", "size", "red_pixel"), [(1, (40, 20), (10, 10)), (6, (20, 40), (10, 5)),
                                                                 (3, (40, 20), (30, 10)), (8, (20, 40), (10, 30))])
def test_exif_orientation_is_applied(tmp_path, orientation, size, red_pixel):
    # Stored 40 x 20 with a red left half. Orientation 6 means "turn 90 degrees clockwise to view": the red half goes on
    # top; 3 is a half turn (red on the right); 8 a counter-clockwise quarter turn (red at the bottom).
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"exif{orientation}.jpg"
    stored.save(path, exif=exif.tobytes(), quality=95)
    image = open_rgb(path)
    assert image.size == size
    red, green, blue = image.getpixel(red_pixel)
    assert red > 240 and blue < 15


def test_small_images_are_accepted_but_one_pixel_sides_are_not(tmp_path):
    Image.new("RGB", (2, 3), (1, 2, 3)).save(tmp_path / "tiny.png")
    assert open_rgb(tmp_path / "tiny.png").size == (2, 3)
    for size in [(1, 1), (1, 50)]:
        path = tmp_path / f"line{size[0]}x{size[1]}.png"
        Image.new("RGB", size).save(path)
        with pytest.raises(BadImageError, match=error_for(path) + rf"the image is only {size[0]}x{size[1]} pixels"):
            open_rgb(path)


def test_random_bytes_and_text_files_are_not_images(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n")
    for path in (junk, text):
        with pytest.raises(BadImageError, match=error_for(path) + "not an image file") as info:
            open_rgb(path)
        assert "on_error='skip'" in str(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files_fail_inside_open_rgb(tmp_path, suffix):
    rng = np.random.default_rng(1)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert Image.open(cut).size == (64, 64)  # the header alone looks fine: decoding must be forced
    with pytest.raises(BadImageError, match=error_for(cut) + r"corrupt or truncated image data \(OSError"):
        open_rgb(cut)


def test_missing_paths_and_directories(tmp_path):
    missing = tmp_path / "nowhere" / "gone.jpg"
    with pytest.raises(BadImageError, match=error_for(missing) + "the file does not exist"):
        open_rgb(missing)
    with pytest.raises(BadImageError, match=error_for(tmp_path) + "this is a directory"):
        open_rgb(tmp_path)


def test_bad_image_error_is_a_value_error_that_survives_pickling(tmp_path):
    error = BadImageError(tmp_path / "a.jpg", "broken")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, str(copy)) == (error.path, "broken", str(error))


def test_the_returned_image_does_not_depend_on_the_file(tmp_path):
    path = tmp_path / "gone-after.png"
    Image.new("RGB", (5, 4), (9, 8, 7)).save(path)
    image = open_rgb(path)
    path.unlink()
    assert image.getpixel((4, 3)) == (9, 8, 7)
