"""The paper's spatial-search patch pyramid (Sec. 4.2): overlapping sub-patches at several scales, as squares.

Level ``i`` (``1 <= i <= levels``) holds an ``i x i`` grid of equal-sized patches that together cover the
image. The paper does not give patch size or overlap, so this module fixes them (see ``docs/retrieval.md``):

* patch side ``p = 2 W / (i + 1)`` along the width (and ``2 H / (i + 1)`` along the height), stride
  ``W / (i + 1)``: neighbouring patches overlap by 50%, the first starts at 0 and the last ends at ``W``.
  Sides are rounded to whole pixels once per level and the starts spread evenly, so every patch of a level has
  exactly the same size and the union is exactly the image.
* level 1 is the whole image; 4 levels give 1 + 4 + 9 + 16 = 30 patches (database images), 3 levels 14
  (queries). Level ``i``'s boxes do not depend on how many levels follow, so a 3-level grid is the first 14
  boxes of the 4-level grid of the same image.
* each patch is read from its smallest enclosing **square** (the paper: no anisotropic warp here, unlike
  classification): side ``max(w, h)``, centred on the patch, shifted to stay inside the image where the image
  is large enough along that axis, and padded with the image's mean colour where it is not (a wide image's
  level-1 square sticks out above and below). Padding with the mean colour, rather than black, keeps the
  padded band close to what the network sees as "nothing in particular" after its mean/std normalisation.
"""

from __future__ import annotations

from PIL import Image, ImageStat

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), pixels, x1/y1 exclusive


def _level_starts(extent: int, level: int) -> tuple[int, list[int]]:
    """Patch side and start offsets of ``level`` patches along an axis of ``extent`` pixels (50% overlap)."""
    side = max(1, round(2 * extent / (level + 1)))
    if level == 1:
        return extent, [0]
    return side, [round(j * (extent - side) / (level - 1)) for j in range(level)]


def patch_boxes(width: int, height: int, levels: int) -> list[Box]:
    """Boxes ``(x0, y0, x1, y1)`` of the spatial-search pyramid of a ``width x height`` image, level by level.

    Within a level the boxes run row by row (top to bottom, left to right). There are ``sum(i**2 for i in
    1..levels)`` of them: 30 for 4 levels, 14 for 3.
    """
    if int(width) < 1 or int(height) < 1:
        raise ValueError(f"patch_boxes() needs a positive image size, got {width} x {height}.")
    if int(levels) < 1:
        raise ValueError(f"patch_boxes() needs levels >= 1, got {levels}.")
    boxes = []
    for level in range(1, int(levels) + 1):
        side_x, xs = _level_starts(int(width), level)
        side_y, ys = _level_starts(int(height), level)
        boxes += [(x0, y0, x0 + side_x, y0 + side_y) for y0 in ys for x0 in xs]
    return boxes


def patch_names(levels: int) -> list[str]:
    """One name per box of :func:`patch_boxes`, e.g. ``"L2_r0c1"`` (level 2, row 0, column 1)."""
    return [
        f"L{level}_r{row}c{col}"
        for level in range(1, levels + 1)
        for row in range(level)
        for col in range(level)
    ]


def square_box(box: Box, width: int, height: int) -> Box:
    """The smallest square holding ``box``, centred on it and shifted inside the image where the image allows.

    Along an axis shorter than the square side the square stays centred and sticks out on both sides (the
    caller pads that part); the result can therefore have negative or out-of-image coordinates.
    """
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)

    def place(lo: int, hi: int, extent: int) -> int:
        start = (lo + hi - side) // 2
        if side <= extent:
            start = min(max(start, 0), extent - side)
        return start

    sx, sy = place(x0, x1, width), place(y0, y1, height)
    return sx, sy, sx + side, sy + side


def mean_colour(image: Image.Image) -> tuple[int, ...]:
    """Mean value of each band of ``image``, rounded to integers (the padding colour)."""
    return tuple(int(round(value)) for value in ImageStat.Stat(image).mean)


def crop_square(image: Image.Image, box: Box, fill: tuple[int, ...] | None = None) -> Image.Image:
    """Cut ``box``'s enclosing square (:func:`square_box`) from ``image``, padding outside with ``fill``."""
    x0, y0, x1, y1 = square_box(box, image.width, image.height)
    if x0 >= 0 and y0 >= 0 and x1 <= image.width and y1 <= image.height:
        return image.crop((x0, y0, x1, y1))
    fill = mean_colour(image) if fill is None else fill
    canvas = Image.new(image.mode, (x1 - x0, y1 - y0), fill if len(fill) > 1 else fill[0])
    inner = (max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height))
    canvas.paste(image.crop(inner), (inner[0] - x0, inner[1] - y0))
    return canvas


class SpatialPatches:
    """A view spec (``docs/CONTRACTS.md``) cutting the spatial-search pyramid of square patches from an image.

    ``SpatialPatches(4)`` (30 views) is the paper's database setting, ``SpatialPatches(3)`` (14 views) its
    query setting. The feature engine applies the backbone's transform (a resize to its input size) to every
    square.
    """

    def __init__(self, levels: int = 4) -> None:
        if int(levels) < 1:
            raise ValueError(f"SpatialPatches needs levels >= 1, got {levels}.")
        self.levels = int(levels)
        self.name = f"spatial{self.levels}"  # with params below, goes into the feature cache key
        self.view_names = patch_names(self.levels)
        self.n_views = len(self.view_names)
        # every setting that changes the pixels, for the feature cache key
        self.params = {
            "levels": self.levels,
            "overlap": 0.5,
            "read_as": "enclosing_square",
            "padding": "mean_colour",
        }

    def boxes(self, width: int, height: int) -> list[Box]:
        """Each view's patch (before it is squared), as :func:`patch_boxes` gives it."""
        return patch_boxes(width, height, self.levels)

    def __call__(self, image: Image.Image) -> list[Image.Image]:
        image = image.convert("RGB") if image.mode != "RGB" else image
        fill = mean_colour(image)
        return [crop_square(image, box, fill) for box in self.boxes(image.width, image.height)]

    def __repr__(self) -> str:
        return f"SpatialPatches(levels={self.levels})"
