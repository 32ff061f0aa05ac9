"""Decode any image file a dataset may hold into an upright 8-bit RGB picture, or fail with a clear message.

Real benchmarks are messy: a few greyscale or CMYK JPEGs, PNGs with an alpha channel or a palette, 16-bit scans,
phone photos stored sideways with an EXIF orientation tag, and now and then a truncated download. The network wants
one thing, an RGB image the right way up, so every image in the course goes through :func:`open_rgb`:

* the EXIF orientation is applied (a phone photo comes out upright, as a person would see it);
* every mode becomes RGB: greyscale and bilevel are copied to three channels, CMYK is converted, transparent images
  (RGBA, LA, palette with transparency) are composited on white, and 16-bit images (modes ``I;16*``, and ``I``,
  which Pillow uses for some 16-bit PNGs) are scaled to 8 bits by their bit depth (65535 -> 255; Pillow's own
  conversion would clip every value above 255 to white);
* the pixels are decoded *inside* the error handling (Pillow decodes lazily), so a truncated or corrupt file raises
  :class:`BadImageError` here, naming the file, instead of failing later somewhere deep in a batch.

Big photos decoded small: :func:`open_rgb_reduced` lets the caller pick, from the upright size read in the header, a
reduction of 2, 4 or 8 that libjpeg applies *while decoding* (Pillow's ``draft``: the DCT is scaled, so a 12-megapixel
phone photo decodes several times faster and needs a fraction of the memory). Only JPEG files can be reduced; other
formats, and JPEGs whose caller asks for no reduction, decode in full exactly as :func:`open_rgb` does.

Images smaller than the network input are fine (the network's transform upsamples them), but an image with a side
below :data:`MIN_SIDE` pixels holds no picture to speak of and is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MIN_SIDE = 2
_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ADVICE = (
    "Re-download or re-export the file, remove it from the list, or pass on_error='skip' to extract the other "
    "images and report this one."
)


class BadImageError(ValueError):
    """An image file cannot be used: missing, unreadable, not an image, corrupt, truncated or degenerate.

    ``path`` and ``reason`` are kept as attributes so that a caller skipping bad files can report them.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot use image {self.path}: {reason}. {_ADVICE}")

    def __reduce__(self):  # keep (path, reason) when the error crosses a process boundary (DataLoader workers)
        return (type(self), (self.path, self.reason))


DRAFT_SCALES = (8, 4, 2)  # the reductions libjpeg can apply while decoding (Pillow's draft), largest first
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the stored picture by 90 degrees


class _BadScaleError(Exception):
    """``scale_for`` returned an impossible scale (kept apart from the file errors caught around decoding)."""


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an upright RGB image (see the module docstring for what is converted and why).

    Raises :class:`BadImageError` (a ``ValueError``) naming the file for a missing path, a directory, a file that
    cannot be read, a file that is not an image, corrupt or truncated pixel data, and images with a side below
    :data:`MIN_SIDE` pixels.
    """
    return open_rgb_reduced(path, None)[0]


def open_rgb_reduced(
    path: str | os.PathLike, scale_for: Callable[[int, int], int] | None
) -> tuple[Image.Image, tuple[int, int]]:
    """Like :func:`open_rgb`, but a JPEG may be decoded at 1/2, 1/4 or 1/8 of its size: ``scale_for(width,
    height)`` gets the *upright* full size from the header and returns 1 (full size) or one of
    :data:`DRAFT_SCALES`; the decoded sides are then ``ceil(side / scale)``. Returns the upright image and the upright
    full size, so that coordinates given in full-size pixels (a crop box) can be scaled to the decoded image. Errors as
    :func:`open_rgb`; a ``scale_for`` returning anything else raises ``ValueError``.
    """
    path = Path(path)
    if not path.exists():
        raise BadImageError(path, "the file does not exist (check the path and the current dataset folder)")
    if path.is_dir():
        raise BadImageError(path, "this is a directory, not an image file")
    try:
        with Image.open(path) as image:
            full = None  # the decoded image's own size, unless it is decoded reduced
            if scale_for is not None and image.format == "JPEG":
                full = upright_size(image)
                scale = scale_for(*full)
                if scale not in (1, *DRAFT_SCALES):
                    raise _BadScaleError(f"scale_for() must return 1 or one of {DRAFT_SCALES}; it returned {scale!r}")
                if scale > 1:
                    # Pillow picks the largest scale that keeps both sides >= the size asked for: exactly ``scale``.
                    image.draft("RGB", (image.width // scale, image.height // scale))
            image.load()  # Pillow decodes lazily: force it here so that truncated data fails inside this try
            # Turned upright in place: without an orientation tag nothing is copied (decoding every image of a
            # dataset, the copies cost a tenth of the decoding time).
            ImageOps.exif_transpose(image, in_place=True)
            rgb = to_rgb(image)
    except PermissionError as err:
        raise BadImageError(path, f"permission denied ({err.strerror}); check the file's access rights") from err
    except _BadScaleError as err:  # the caller's mistake, not the file's
        raise ValueError(str(err)) from None
    except Image.UnidentifiedImageError as err:
        raise BadImageError(path, "not an image file, or a format Pillow cannot decode") from err
    except Image.DecompressionBombError as err:
        raise BadImageError(path, f"too many pixels to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as err:
        # Pillow's decoders report damaged data with any of these (e.g. OSError "image file is truncated").
        raise BadImageError(path, f"corrupt or truncated image data ({type(err).__name__}: {err})") from err
    width, height = rgb.size
    if min(width, height) < MIN_SIDE:
        raise BadImageError(
            path, f"the image is only {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} are needed"
        )
    return rgb, full or rgb.size


def upright_size(image: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an opened (not necessarily decoded) image once its EXIF orientation is applied."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block: exif_transpose will not turn the image either
        orientation = 1
    width, height = image.size
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image from a decoded image of any Pillow mode (transparency composited on white); an RGB image
    comes back as it is, not copied."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit PNG/TIFF greyscale: scale 0..65535 to 0..255 (x / 257 maps 65535 to 255 and 257 to 1 exactly).
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        # Floating-point images: [0, 1] when every value fits, otherwise read as 0..255.
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size and finite.min() >= 0 and finite.max() <= 1 else 1.0
        grey = np.clip(np.rint(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    # L, 1, P without transparency, CMYK, YCbCr, LAB, HSV: Pillow's own conversion is right for these.
    return image.convert("RGB")
