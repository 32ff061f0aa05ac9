"""The paper's jittered views: cut several pictures from one image so that each becomes a sample (docs/paper.md, section 2).

CNNaug-SVM gives every image 16 representations: the whole image, four corner crops and a centre crop each
2/3 of the width by 2/3 of the height (4/9 of the area), two small rotations, and the horizontal mirror of each of
those 8. Training uses every view as a sample with the image's label; testing sums the SVM scores over the views.

A *view spec* (see ``docs/CONTRACTS.md``) is an object with ``name`` (goes into the feature cache key, so it must
change whenever the geometry does), ``view_names``, ``n_views`` and ``__call__(image) -> list of images``; it may also
offer ``params`` (a JSON-able dict of its settings, added to the cache key) and ``boxes(width, height)``. The feature
engine decodes each image once and calls the spec on it.

Rotations (the paper gives no angles): +10 and -10 degrees. Ten degrees is the larger of the usual choices, so the
two views differ visibly from the whole image, yet stays within the tilt of a hand-held photo, which ImageNet networks
have seen. Each rotated image is cut to the **largest axis-aligned rectangle that holds no corner of the canvas**
(:func:`inscribed_rotation_box`), rather than keeping the black wedges that ``rotate(expand=False)`` leaves: black
corners are an artefact no training image had, and the network would describe them instead of the content. The price
is a mild zoom: at 10 degrees a 4:3 photo keeps about 73% of its area.

Everything here is a pure function of the image size, so the boxes can be tested pixel by pixel on synthetic images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1): x1 and y1 exclusive, as in PIL.Image.crop
CROP_FRACTION = 2.0 / 3.0
ROTATION_DEGREES = 10.0
CROP_NAMES = ("crop_tl", "crop_tr", "crop_bl", "crop_br", "crop_c")


@runtime_checkable
class ViewSpec(Protocol):
    """What the feature engine needs from a view spec (retrieval's patch grids follow it too)."""

    name: str
    view_names: list[str]

    @property
    def n_views(self) -> int: ...

    def __call__(self, image: Image.Image) -> list[Image.Image]: ...


def crop_boxes(width: int, height: int, fraction: float = CROP_FRACTION) -> dict[str, Box]:
    """The paper's five crops: four corners and the centre, each ``fraction`` of the width and of the height.

    Sizes are rounded to whole pixels (at least 1); the centre crop is centred to within half a pixel.
    """
    _check_size(width, height)
    if not 0 < fraction <= 1:
        raise ValueError(f"Crop fraction must be in (0, 1]; got {fraction}.")
    crop_w = max(1, round(width * fraction))
    crop_h = max(1, round(height * fraction))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return {
        "crop_tl": (0, 0, crop_w, crop_h),
        "crop_tr": (width - crop_w, 0, width, crop_h),
        "crop_bl": (0, height - crop_h, crop_w, height),
        "crop_br": (width - crop_w, height - crop_h, width, height),
        "crop_c": (left, top, left + crop_w, top + crop_h),
    }


def inscribed_rotation_box(width: int, height: int, degrees: float) -> Box:
    """The largest axis-aligned rectangle inside a ``width`` x ``height`` image rotated by ``degrees`` about its centre.

    The box is in the coordinates of ``image.rotate(degrees, expand=False)`` (same size, same centre) and holds only
    pixels of the image, none of the fill. For half-sides ``X, Y`` of a centred rectangle, rotation ``a`` and
    ``s = |sin a|, c = |cos a|``, the corner conditions are ``X c + Y s <= w/2`` and ``X s + Y c <= h/2``. Maximising
    ``X Y``: when the short side ``m`` satisfies ``m <= 2 s c M`` (``M`` the long side; thin images or large angles)
    only the short-side condition binds and the best is ``X = m / (4 s), Y = m / (4 c)`` (swapped for tall images);
    otherwise both bind, giving ``2X = (w c - h s) / (c^2 - s^2)`` and ``2Y = (h c - w s) / (c^2 - s^2)``.
    The result is rounded inwards to whole pixels, then shrunk by one pixel on each side so that no pixel blended
    with the fill by the bilinear resampling remains.
    """
    _check_size(width, height)
    s, c = abs(math.sin(math.radians(degrees))), abs(math.cos(math.radians(degrees)))
    if s < 1e-12:
        return (0, 0, width, height)
    if c < 1e-12:  # a quarter turn: the image fits exactly with its sides swapped
        inner_w, inner_h = float(min(width, height)), float(min(width, height))
    else:
        long_side, short_side = max(width, height), min(width, height)
        if short_side <= 2 * s * c * long_side:
            half_x, half_y = short_side / (4 * s), short_side / (4 * c)
            if width < height:
                half_x, half_y = half_y, half_x
            inner_w, inner_h = 2 * half_x, 2 * half_y
        else:
            cos_2a = c * c - s * s
            inner_w, inner_h = (width * c - height * s) / cos_2a, (height * c - width * s) / cos_2a
    return _centred_box(width, height, min(inner_w, width) - 2, min(inner_h, height) - 2)


def rotate_into_box(image: Image.Image, degrees: float, box: Box) -> Image.Image:
    """``image.rotate(degrees, BILINEAR).crop(box)``, computing only the pixels inside ``box``.

    One affine resampling maps each output pixel ``(u, v)`` to the point of the source image that the rotation about
    the centre brings to ``(u + x0, v + y0)``. Resampling only the box (about 70% of the image at 10 degrees) rather
    than the whole canvas makes a rotated view cheaper (4.3 against 5.3 ms for a 500 x 375 photo, one core); pixels
    agree with rotate-then-crop to within one grey level (rounding).
    """
    width, height = image.size
    x0, y0, x1, y1 = box
    radians = -math.radians(degrees)  # PIL maps output to input, so the inverse rotation
    cos, sin = math.cos(radians), math.sin(radians)
    cx, cy = width / 2, height / 2
    # input = R (output - centre) + centre, with output = (u + x0, v + y0)
    offset_x = cos * (x0 - cx) + sin * (y0 - cy) + cx
    offset_y = -sin * (x0 - cx) + cos * (y0 - cy) + cy
    matrix = (cos, sin, offset_x, -sin, cos, offset_y)
    return image.transform((x1 - x0, y1 - y0), Image.Transform.AFFINE, matrix, resample=Image.Resampling.BILINEAR)


def _centred_box(width: int, height: int, inner_w: float, inner_h: float) -> Box:
    inner_w, inner_h = max(inner_w, 1.0), max(inner_h, 1.0)
    x0 = math.ceil((width - inner_w) / 2)
    y0 = math.ceil((height - inner_h) / 2)
    x1 = max(x0 + 1, math.floor((width + inner_w) / 2))
    y1 = max(y0 + 1, math.floor((height + inner_h) / 2))
    return (x0, y0, min(x1, width), min(y1, height))


def enlarge_box(box: Sequence[float], factor: float, width: int, height: int) -> Box:
    """Scale ``box`` (x0, y0, x1, y1) by ``factor`` about its centre, clip it to the image, round outwards.

    The paper enlarges the bird and person boxes "by 150%" to take in some context; the course reads that as each side
    times 1.5 (``factor=1.5``; see docs/paper.md section 8).
    """
    _check_size(width, height)
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ValueError(f"A box needs four finite numbers (x0, y0, x1, y1); got {tuple(box)}.")
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"Box {tuple(box)} is empty: it needs x1 > x0 and y1 > y0.")
    if not factor > 0:
        raise ValueError(f"The enlargement factor must be positive; got {factor}.")
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    left, top = max(0, math.floor(cx - half_w)), max(0, math.floor(cy - half_h))
    right, bottom = min(width, math.ceil(cx + half_w)), min(height, math.ceil(cy + half_h))
    if right <= left or bottom <= top:
        raise ValueError(f"Box {tuple(box)} lies outside the {width}x{height} image.")
    return (left, top, right, bottom)


def enlarge_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Scale every ``(x0, y0, x1, y1)`` row of ``boxes`` by ``factor`` about its centre, without clipping.

    For a whole dataset whose image sizes are not known before decoding: the feature extractor clips each box to its
    image and rounds it outwards when it crops, which makes the result :func:`enlarge_box`'s. NaN rows (no box)
    stay NaN.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), one (x0, y0, x1, y1) per image; got {boxes.shape}.")
    if not factor > 0:
        raise ValueError(f"The enlargement factor must be positive; got {factor}.")
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * factor / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"Image size must be at least 1x1 pixels; got {width}x{height}.")


def _rotation_name(degrees: float) -> str:
    return f"rot{degrees:+g}"


class Jitter:
    """Views built from the whole image, optional corner/centre crops and rotations, each optionally mirrored.

    View order: the whole image, the crops (:data:`CROP_NAMES`), the rotations (``"rot+10"``...), then the mirror of
    each of those in the same order, named with a ``"flip_"`` prefix. ``params`` records every number that changes
    the pixels, so that the feature cache tells two settings apart.
    """

    def __init__(
        self,
        name: str,
        crops: bool = False,
        rotations: Sequence[float] = (),
        mirror: bool = False,
        crop_fraction: float = CROP_FRACTION,
    ) -> None:
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"Crop fraction must be in (0, 1]; got {crop_fraction}.")
        self.name = name
        self.crops = crops
        self.rotations = tuple(float(d) for d in rotations)
        self.mirror = mirror
        self.crop_fraction = float(crop_fraction)
        base = ["whole"] + (list(CROP_NAMES) if crops else []) + [_rotation_name(d) for d in self.rotations]
        self.view_names = base + ([f"flip_{n}" for n in base] if mirror else [])
        self.params = {
            "crops": crops,
            "crop_fraction": round(self.crop_fraction, 12),
            "rotations": list(self.rotations),
            "rotation_crop": "inscribed",
            "resample": "bilinear",
            "mirror": mirror,
        }

    @property
    def n_views(self) -> int:
        """How many views each image gives."""
        return len(self.view_names)

    def boxes(self, width: int, height: int) -> list[Box]:
        """One box per view: where it is cut, in the image rotated by the view's angle (before any mirroring)."""
        base = [(0, 0, width, height)]
        if self.crops:
            base += list(crop_boxes(width, height, self.crop_fraction).values())
        base += [inscribed_rotation_box(width, height, d) for d in self.rotations]
        return base + (base if self.mirror else [])

    def base_views(self, image: Image.Image) -> list[Image.Image]:
        """The views before mirroring: the whole image, the crops and the rotations.

        With ``mirror=True`` the remaining views are these, flipped, in the same order. The feature engine uses that:
        it transforms only these and flips the resulting tensors, which gives the same numbers (it checks that the
        network's transform commutes with the flip) for half the resizing work.
        """
        width, height = image.size
        views = [image]
        if self.crops:
            views += [image.crop(box) for box in crop_boxes(width, height, self.crop_fraction).values()]
        views += [rotate_into_box(image, degrees, inscribed_rotation_box(width, height, degrees))
                  for degrees in self.rotations]
        return views

    def __call__(self, image: Image.Image) -> list[Image.Image]:
        """Cut every view from one decoded image, in the order of :attr:`view_names`."""
        views = self.base_views(image)
        if self.mirror:
            views += [view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for view in views]
        return views

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n_views={self.n_views}, params={self.params})"


class Whole(Jitter):
    """One view: the whole image (the paper's CNN-SVM)."""

    def __init__(self) -> None:
        super().__init__("whole")


class Mirror(Jitter):
    """Two views: the whole image and its horizontal mirror."""

    def __init__(self) -> None:
        super().__init__("mirror", mirror=True)


class Paper16(Jitter):
    """The paper's 16 views (CNNaug-SVM): whole, 5 crops of 4/9 the area, 2 rotations, and the mirror of each."""

    def __init__(self, degrees: float = ROTATION_DEGREES, crop_fraction: float = CROP_FRACTION) -> None:
        if not 0 < abs(degrees) < 45:
            raise ValueError(f"Paper16 rotates by +/- a small angle; got {degrees} degrees (use 0 < |angle| < 45).")
        super().__init__(
            "paper16", crops=True, rotations=(abs(degrees), -abs(degrees)), mirror=True, crop_fraction=crop_fraction
        )


VIEW_SPECS = {"whole": Whole, "mirror": Mirror, "paper16": Paper16}


def get_views(views: str | ViewSpec) -> ViewSpec:
    """The view spec called ``views`` (``"whole"``, ``"mirror"``, ``"paper16"``), or ``views`` itself if it is one."""
    if isinstance(views, str):
        if views not in VIEW_SPECS:
            raise ValueError(f"Unknown views {views!r}; choose one of {sorted(VIEW_SPECS)} or pass a view spec.")
        return VIEW_SPECS[views]()
    missing = [attr for attr in ("name", "view_names", "n_views") if not hasattr(views, attr)]
    if missing or not callable(views):
        raise TypeError(
            f"{views!r} is not a view spec: it needs name, view_names, n_views and __call__(image) "
            f"(missing: {', '.join(missing) or '__call__'})."
        )
    return views
