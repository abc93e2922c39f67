"""The one way an image file becomes model input: decode to RGB uint8, then resize.

Training (through ``backend.data.cache``) and prediction both call :func:`load_image_rgb` and
:func:`resize_rgb`, so a file predicts exactly the way it trained. Only PNG, JPEG, BMP and WebP are
accepted; every other mode (greyscale, palette, 16-bit, CMYK, transparency) is turned into plain RGB
here, with transparent areas composited on white because plots are drawn on white.

numpy + PIL only: the dashboard imports this without torch.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import WorkbenchError

# Decompression-bomb cap, checked on the header before any pixel is decoded. PIL's own process-wide
# check (Image.MAX_IMAGE_PIXELS, ~179 Mpx to fail) is left as it is; when it fires first, the size
# is read from the header again so the message still gives the real width, height and Mpx.
MAX_PIXELS = 50_000_000
FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
_FORMATS_TEXT = "PNG, JPEG, BMP or WebP"
_WHITE = (255, 255, 255, 255)
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"))
# Grey levels within which an image counts as one flat colour. JPEG noise on a blank page stays a few
# levels; a plotted line differs from its face by far more (tens to hundreds of levels).
FLAT_LEVELS = 8


# PIL warns between its two limits; ours (MAX_PIXELS) is lower and refuses with a message instead.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageError(WorkbenchError, ValueError):
    """An image that cannot become model input; the message says which file and why."""


def check_pixel_count(width: int, height: int, name: str = "image") -> None:
    """Refuse images over :data:`MAX_PIXELS` before decoding them (decompression bombs)."""
    pixels = width * height
    if pixels > MAX_PIXELS:
        raise ImageError(
            f"{name} is {width}x{height} = {pixels / 1e6:.0f} Mpx, over the {MAX_PIXELS / 1e6:.0f} Mpx limit"
        )


def check_drawn(image: np.ndarray, name: str = "image") -> None:
    """Refuse, for prediction, an (H, W, 3) uint8 image with nothing drawn on it: every channel within
    :data:`FLAT_LEVELS` grey levels (a blank page, a fully transparent PNG, a 1x1 pixel). Without this
    the model still names a class for it, with a confidence that means nothing."""
    # One channel at a time: numpy reduces a strided channel view about 20x faster than over axes
    # (0, 1) at once (0.6 ms against 13 ms for an 800x600 plot), and this runs on every prediction.
    spread = max(int(image[..., c].max()) - int(image[..., c].min()) for c in range(image.shape[2]))
    if spread <= FLAT_LEVELS:
        r, g, b = (int(v) for v in image[0, 0])
        raise ImageError(
            f"{name} has nothing drawn on it: all its {image.shape[1]}x{image.shape[0]} pixels are one colour "
            f"(RGB {r}, {g}, {b}; transparent areas count as white); upload the plot itself"
        )


def sniff_image_format(data: bytes) -> str | None:
    """The image format the bytes start with (PNG, JPEG, BMP, WebP), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)


def load_image_rgb(source: Path | str | bytes, *, name: str | None = None) -> np.ndarray:
    """Decode a PNG/JPEG/BMP/WebP file or its bytes to an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied (photos of plots), transparency is composited on white, and
    greyscale, palette, 16-bit and CMYK images are converted to RGB. Anything that cannot be decoded
    (corrupt, truncated, not an image, too many pixels) raises :class:`ImageError`. ``name`` is what
    messages call the file (default: its path, or "image" for bytes).
    """
    name = name or _default_name(source)
    with _open(source, name) as img:
        check_pixel_count(img.width, img.height, name)
        try:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # in place: no copy when there is no rotation
            return _to_rgb_array(img)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            if "truncated" in str(e):
                raise ImageError(f"{name} is a truncated {img.format}: the file ends inside its pixel data") from e
            raise ImageError(f"{name} is corrupt or truncated and cannot be decoded ({e})") from e


def verify_image(source: Path | str | bytes) -> None:
    """Cheap check that a file is a readable image of an accepted format and size, without decoding it.

    Uses PIL's ``verify()`` (header and chunk checks); a file that passes can still fail to decode
    if its compressed pixel data is damaged, which :func:`load_image_rgb` then reports.
    """
    name = _default_name(source)
    with _open(source, name) as img:
        check_pixel_count(img.width, img.height, name)
        try:
            img.verify()
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{name} is corrupt or truncated ({e})") from e


def resize_rgb(image: np.ndarray, size: int, width: int | None = None) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to (size, width, 3) (``width`` defaults to ``size``: a square)
    with PIL's antialiased bilinear filter.

    The aspect ratio is not kept: every plot is squeezed to the model input's shape, as in training.
    """
    width = size if width is None else width
    for what, value in (("image size", size), ("image width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{what} must be a positive whole number of pixels, got {value!r}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"resize_rgb expects an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    if image.shape[:2] == (size, width):
        return image
    resized = Image.fromarray(image).resize((int(width), int(size)), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _default_name(source: Path | str | bytes) -> str:
    return "image" if isinstance(source, (bytes, bytearray)) else f"'{source}'"


def _open(source: Path | str | bytes, name: str) -> Image.Image:
    """Open lazily (header only), turning every way of failing into an ImageError with a reason."""
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else _read_bytes(Path(source), name)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as e:
        check_pixel_count(*_header_size(data), name)  # PIL refused first; say the real size
        raise ImageError(f"{name} is a decompression bomb ({e})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        found = sniff_image_format(data)
        if found:
            raise ImageError(
                f"{name} is a truncated {found} (or its header is damaged): it starts like one but its "
                f"header cannot be read from its {len(data):,} bytes"
            ) from e
        raise ImageError(f"{name} is not a {_FORMATS_TEXT} image ({_guess_content(data)})") from e


def _header_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header alone, through the format's own reader: unlike
    ``Image.open`` it does not refuse a decompression bomb before telling its size."""
    Image.init()
    for fmt in FORMATS:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            with factory(io.BytesIO(data)) as img:
                return img.size
        except (OSError, SyntaxError, ValueError):
            continue
    return 0, 0


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ImageError(f"{name} does not exist") from e
    except IsADirectoryError as e:
        raise ImageError(f"{name} is a folder, not an image file") from e
    except OSError as e:
        raise ImageError(f"{name} cannot be read ({e.strerror or e})") from e


def _guess_content(data: bytes) -> str:
    """A hint for a file PIL does not recognise: text (a CSV saved as .png?) or another format."""
    head = data[:512]
    text = head.decode("utf-8", errors="replace")
    readable = sum(c.isprintable() or c.isspace() for c in text)
    if b"\x00" not in head and readable >= 0.95 * len(text):
        return f"it is a text file starting with {text[:40]!r}"
    return "unrecognised content; convert it to PNG or JPEG"


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) uint8 RGB; transparency over white, 16-bit scaled down to 8."""
    if img.mode.startswith("I;16") or img.mode == "I":
        # PIL's own I;16 -> L conversion clips at 255 instead of scaling; scale the 16-bit range.
        wide = np.asarray(img).astype(np.uint32)
        grey = ((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    return np.array(img.convert("RGB"))
