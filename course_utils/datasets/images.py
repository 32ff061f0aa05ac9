"""Small image and file I/O helpers shared by the dataset builders and loaders.

Two rules live here so that every loader follows them the same way:

* **Atomic writes.** A file is written to a temporary name in the same folder and renamed into place, so an
  interrupted run never leaves a half-written image or list that a later run would read back as valid.
* **Deterministic encoding.** JPEG and PNG files are written with fixed settings and no metadata (no EXIF,
  no timestamps), so building the same image twice gives the same bytes and a manifest of SHA-256 sums stays
  valid.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
JPEG_QUALITY = 90


def is_image_file(path: Path) -> bool:
    """True for a regular, non-hidden file whose extension (any case) is one of :data:`IMAGE_EXTENSIONS`."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error delete it.

    The temporary file sits in the same folder so that the final rename is atomic (same file system), and gets the
    permissions the process's umask gives any new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created like any new file (mode 0o666 less the umask), not 0600 as tempfile.mkstemp would: a cache or data
    # folder prepared by a teacher must stay readable by the students' accounts.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def printable(text: str) -> str:
    """``text`` safe to print, plot or write as UTF-8: the bytes of a file name that is not UTF-8 (which Python holds
    as lone surrogates) are shown as ``\\xNN`` escapes instead of raising ``UnicodeEncodeError``."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically and return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def save_image(image: Image.Image, path: Path, quality: int = JPEG_QUALITY) -> Path:
    """Save an image atomically as JPEG or PNG (by ``path``'s extension), with fixed settings and no metadata.

    JPEG uses 4:2:0 chroma subsampling and no ``optimize`` pass, so the bytes depend only on the pixels, the
    quality and the installed libjpeg: the property the demo sets rely on to be reproducible.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix in (".jpg", ".jpeg"):
            image.save(tmp, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False)
        elif suffix == ".png":
            image.save(tmp, format="PNG", compress_level=6)
        else:
            raise ValueError(f"Cannot save {path}: use a .jpg, .jpeg or .png file name.")
    return path


def to_rgb_image(array: np.ndarray) -> Image.Image:
    """An RGB PIL image from a scikit-image style array: gray or colour, uint8, bool or float in [0, 1].

    RGBA images are composited on white (their transparent parts would otherwise turn black at random).
    """
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"Float image values must lie in [0, 1]; got range [{a.min()}, {a.max()}].")
        a = np.round(a * 255).astype(np.uint8)
    if a.ndim == 2:
        return Image.fromarray(a, mode="L").convert("RGB")
    if a.ndim == 3 and a.shape[2] == 4:
        rgba = Image.fromarray(a, mode="RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if a.ndim == 3 and a.shape[2] == 3:
        return Image.fromarray(a, mode="RGB")
    raise ValueError(f"Expected a (H, W), (H, W, 3) or (H, W, 4) image array; got shape {a.shape}.")


def resize_longer_side(image: Image.Image, size: int) -> Image.Image:
    """Resize (Lanczos) so that the longer side is ``size`` pixels, keeping the aspect ratio."""
    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image if new == image.size else image.resize(new, Image.Resampling.LANCZOS)


_READ_CHUNK = 1 << 18  # bytes per read when hashing a file (a small buffer: memory stays flat, speed the same)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """``"sha256"`` (hex) or ``"crc32"`` (8 hex digits) of a file's bytes, read in chunks into one buffer."""
    if algorithm not in ("sha256", "crc32"):
        raise ValueError(f"Unknown digest {algorithm!r}; choose sha256 or crc32.")
    digest = hashlib.sha256() if algorithm == "sha256" else None
    crc = 0
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(min(_READ_CHUNK, os.fstat(f.fileno()).st_size + 1))  # +1: one read sees the end
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            if digest is not None:
                digest.update(view[:n])
            else:
                crc = zlib.crc32(view[:n], crc)
    return digest.hexdigest() if digest is not None else f"{crc:08x}"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return file_digest(path, "sha256")
