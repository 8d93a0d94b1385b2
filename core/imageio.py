"""Reading photos and reading/writing masks, with every failure turned into one clear, file-naming error.

Face photos arrive from cameras, phones and scrapers: rotated by an EXIF tag, grayscale, CMYK, 16-bit, with alpha,
truncated by a failed download, or renamed from something else. Everything downstream wants plain RGB uint8 in the
orientation a person sees, so that conversion happens here once. A bad file raises `ImageLoadError` and nothing else,
which lets a folder scan record the problem against that one file and carry on.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from faceparse.core.atomic import atomic_path
from faceparse.core.schemas import LabelSchema
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp"})
MAX_PIXELS = 200_000_000
"""Images with more pixels are refused as possible decompression bombs. Change the module value to reconfigure."""

PIL_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, TypeError,
                  MemoryError)

# PIL warns above its own limit and refuses above twice it, before we can look at the size. Align its limit with
# ours and silence its warning: our own check (with our message) refuses those images anyway.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageLoadError(Exception):
    """An image or mask file could not be used; the message names the file and says why.

    `lasting` is False when the file itself may be fine and only reading it failed this time (missing, locked,
    no permission): such a failure must not be remembered against the file, since nothing about it changes when
    the cause passes."""

    def __init__(self, path: str | os.PathLike, reason: str, lasting: bool = True):
        self.path = Path(path)
        self.reason = reason
        self.lasting = lasting
        super().__init__(f"{self.path}: {reason}")


def _passing_failure(path: Path, error: BaseException) -> ImageLoadError | None:
    """A read the system failed (an I/O error on a network share, a cloud placeholder not fetched, a file locked):
    it carries an errno, which the decoder's own complaints about a damaged file never do. The file may be fine."""
    if isinstance(error, OSError) and error.errno is not None:
        return ImageLoadError(path, f"the file could not be read just now ({error.strerror or error})", lasting=False)
    return None


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    if not path.exists():
        raise ImageLoadError(path, "file not found", lasting=False)
    if path.is_dir():
        raise ImageLoadError(path, "is a folder, not an image")
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        img = Image.open(path, formats=PIL_FORMATS)
    except Image.DecompressionBombError:
        raise ImageLoadError(path, "the header declares far too many pixels; "
                                   "refusing a possible decompression bomb") from None
    except UnidentifiedImageError:
        raise ImageLoadError(path, _unsupported_reason(path)) from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied", lasting=False) from None
    except _DECODE_ERRORS as e:
        raise _passing_failure(path, e) or ImageLoadError(path, f"cannot read the image header ({e})") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        img.close()
        raise ImageLoadError(path, f"invalid image size {w}x{h}")
    if w * h > limit:
        img.close()
        raise ImageLoadError(path, f"{w}x{h} is {w * h:,} pixels, over the limit of {limit:,}; "
                                   "refusing a possible decompression bomb")
    return img


_SIGNATURES = (
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
)


def _unsupported_reason(path: Path) -> str:
    supported = "JPEG, PNG, BMP, TIFF or WebP"
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise ImageLoadError(path, f"cannot read the file ({e.strerror or e})", lasting=False) from None
    if not head:
        return "the file is empty"
    kind = next((name for sig, name in _SIGNATURES if head.startswith(sig)), None)
    if kind is None and head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        kind = "an AVIF image" if brand.startswith("avi") else f"a HEIC/ISO media file ({brand})"
    if kind is None and head.lstrip().startswith((b"<", b"{")):
        kind = "a text file (XML/SVG/HTML or JSON)"
    if kind:
        return f"unsupported format: the file is {kind}; {supported} expected"
    return f"not a recognised image ({supported} expected); the file is another format or damaged"


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation without decoding pixel data (PNG keeps EXIF in a chunk that may follow the pixels, seen
    here only once the pixels are loaded; `read_size` looks for it)."""
    try:
        if img.format == "PNG":
            return _orientation_of_exif(img.info.get("exif"))
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _orientation_of_exif(raw: bytes | None) -> int:
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        value = exif.get(_EXIF_ORIENTATION, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _png_exif_after_pixels(path: Path) -> bytes | None:
    """The eXIf chunk of a PNG that stores it after the pixel data, found by skipping from chunk header to chunk
    header (no decoding); None when there is none or the file cannot be walked."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while header := f.read(8):
                if len(header) < 8:
                    return None
                length, kind = struct.unpack(">I", header[:4])[0], header[4:]
                if kind == b"eXIf":
                    return f.read(length)
                if kind == b"IEND":
                    return None
                f.seek(length + 4, os.SEEK_CUR)
    except OSError:
        return None
    return None


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """The size as the file stores the pixels, before any orientation: newer Pillow versions report a TIFF turned
    by its orientation tag already turned at open (and drop the tag once the pixels load), older ones do not."""
    if img.format == "TIFF":
        with contextlib.suppress(Exception):
            w, h = int(img.tag_v2[256]), int(img.tag_v2[257])
            if w > 0 and h > 0:
                return w, h
    return img.size


def read_size(path: str | os.PathLike, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) as displayed, i.e. after EXIF orientation, as `load_rgb` will return the picture; reads
    the header only (and, for a PNG, skips over the pixel data to a later EXIF chunk)."""
    path = Path(path)
    with _open(path, max_pixels) as img:
        w, h = _stored_size(img)
        orientation = _orientation(img)
        if img.format == "PNG" and not img.info.get("exif"):
            orientation = _orientation_of_exif(_png_exif_after_pixels(path))
        if orientation in _TRANSPOSING_ORIENTATIONS:
            w, h = h, w
    return w, h


def _to_rgb_array(img: Image.Image, path: Path) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
        # 12-bit sensors store 0-4095 in 16-bit files: shift by the bits actually used, not always by 8
        shift = max(0, int(arr.max(initial=0)).bit_length() - 8)
        gray = (arr >> shift).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = np.nan_to_num(arr)
        scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
        gray = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        # Transparent regions become white rather than whatever colour hides under alpha 0.
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    try:
        rgb = img.convert("RGB")
    except ValueError:
        raise ImageLoadError(path, f"unsupported colour mode {mode}") from None
    return np.asarray(rgb, dtype=np.uint8)


def load_rgb(path: str | os.PathLike, max_side: int | None = None, max_pixels: int | None = None) -> np.ndarray:
    """The photo as an HxWx3 uint8 RGB array, upright (EXIF orientation applied), whatever its mode.

    `max_side` asks for a reduced copy whose longer side is at most that many pixels; JPEGs are then decoded at a
    reduced scale directly, which is what makes thumbnails of large photos cheap.
    """
    path = Path(path)
    img = _open(path, max_pixels)
    try:
        try:
            if max_side is not None and img.format in ("JPEG", "MPO"):
                img.draft("RGB", (max_side, max_side))
            img.load()
        except _DECODE_ERRORS as e:
            if (passing := _passing_failure(path, e)) is not None:
                raise passing from None
            reason = str(e) or type(e).__name__
            if "truncated" in reason or isinstance(e, EOFError):
                raise ImageLoadError(path, f"the file is truncated ({reason})") from None
            raise ImageLoadError(path, f"the file is corrupt ({reason})") from None
        upright = img
        if _orientation(img) != 1:
            try:
                upright = ImageOps.exif_transpose(img)
            except _DECODE_ERRORS:
                upright = img
        if max_side is not None and max(upright.size) > max_side:
            if upright.mode not in ("RGB", "RGBA", "L", "LA"):
                upright = Image.fromarray(_to_rgb_array(upright, path))
            upright = upright.copy() if upright is img else upright
            upright.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.ascontiguousarray(_to_rgb_array(upright, path))
    finally:
        img.close()


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit index mask as HxW uint8. Colour images are refused: their colours are not class indices."""
    path = Path(path)
    img = _open(path, None)
    try:
        try:
            img.load()
        except _DECODE_ERRORS as e:
            raise _passing_failure(path, e) or ImageLoadError(
                path, f"the mask file is damaged ({e or type(e).__name__})") from None
        if img.mode in ("P", "L"):
            return np.array(img, dtype=np.uint8)
        if img.mode == "1":
            return np.array(img, dtype=np.uint8)
        if img.mode in ("I", "I;16", "I;16L", "I;16B"):
            arr = np.asarray(img)
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise ImageLoadError(path, "16-bit mask has values above 255; masks hold class indices 0-255")
            return arr.astype(np.uint8)
        raise ImageLoadError(path, f"is a {img.mode} image; a mask must be a single-channel 8-bit index PNG "
                                   "(palette or grayscale), not a colour picture")
    finally:
        img.close()


def _check_mask_array(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W); got shape {mask.shape}")
    if mask.dtype == np.uint8:
        return np.ascontiguousarray(mask)
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"a mask must hold integer class indices; got dtype {mask.dtype}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError("mask values must be class indices 0-255")
    return mask.astype(np.uint8)


def save_mask(path: str | os.PathLike, mask: np.ndarray, schema: LabelSchema | None = None,
              compress_level: int = 3) -> None:
    """Write an 8-bit index PNG atomically; with a schema it carries the class colours as its palette.

    zlib's run-length strategy suits masks (long runs of one class): about half the size of the default strategy at
    the same speed."""
    mask = _check_mask_array(mask)
    if schema is not None and mask.size and int(mask.max()) >= schema.num_classes:
        raise ValueError(f"mask has class {int(mask.max())}, outside schema {schema.name!r} "
                         f"({schema.num_classes} classes)")
    img = Image.fromarray(mask)
    if schema is not None:
        img.putpalette(schema.palette())
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=compress_level, compress_type=zlib.Z_RLE)


def colorize(mask: np.ndarray, schema: LabelSchema) -> np.ndarray:
    """HxWx3 uint8 picture of a mask in the schema's colours."""
    return schema.color_lut()[np.asarray(mask, dtype=np.uint8)]


def is_image_file(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
