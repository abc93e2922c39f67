"""load_image_rgb / resize_rgb: every accepted format and mode becomes the same RGB uint8, bad files
get a clear ImageError. Images are built here with PIL (no generator needed)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from backend.data.images import MAX_PIXELS, ImageError, load_image_rgb, resize_rgb, verify_image


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def random_rgb(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A real 1-bit greyscale PNG of ``width`` x ``height`` zeros: a few KB that decode to gigabytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "WEBP"])
def test_lossless_formats_round_trip_exactly(fmt):
    pixels = random_rgb()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    out = load_image_rgb(encode(Image.fromarray(pixels), fmt, **kwargs))
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, pixels)


def test_jpeg_decodes_close_to_the_original():
    pixels = np.full((32, 32, 3), (200, 40, 90), dtype=np.uint8)
    out = load_image_rgb(encode(Image.fromarray(pixels), "JPEG", quality=95))
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(int) - pixels).max() <= 6


def test_path_and_bytes_give_the_same_array(tmp_path):
    data = encode(Image.fromarray(random_rgb()), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_image_rgb(path), load_image_rgb(data))
    np.testing.assert_array_equal(load_image_rgb(str(path)), load_image_rgb(data))


def test_rgba_is_composited_on_white():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 255, 0)  # fully transparent becomes white
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black becomes mid grey
    out = load_image_rgb(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert all(120 <= c <= 135 for c in out[0, 2])


def test_greyscale_with_alpha_is_composited_on_white():
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), "LA")
    out = load_image_rgb(encode(la, "PNG"))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == (0, 0, 0)


def test_palette_with_transparency_is_composited_on_white():
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    out = load_image_rgb(encode(palette, "PNG", transparency=0))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (200, 100, 50)


def test_palette_and_greyscale_become_rgb():
    grey = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    out = load_image_rgb(encode(Image.fromarray(grey, "L"), "PNG"))
    assert out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out[:, :, 0], grey)
    np.testing.assert_array_equal(out[:, :, 2], grey)
    pixels = random_rgb(8, 8)
    palette = Image.fromarray(pixels).quantize(16)
    np.testing.assert_array_equal(load_image_rgb(encode(palette, "PNG")), np.array(palette.convert("RGB")))


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    wide = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    image = Image.fromarray(wide)
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = load_image_rgb(data)
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image_rgb(encode(cmyk, "JPEG", quality=95))
    assert out.shape == (16, 16, 3)
    r, g, b = out[8, 8].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    image = Image.fromarray(random_rgb(10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = load_image_rgb(encode(image, "JPEG", exif=exif))
    assert out.shape == (20, 10, 3)


def test_text_file_named_png_is_refused_clearly(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("timestamp,value\n0,1.5\n")
    with pytest.raises(ImageError, match=r"not a PNG, JPEG, BMP or WebP image \(it is a text file"):
        load_image_rgb(path)


def test_other_formats_are_refused_with_the_accepted_list():
    gif = encode(Image.new("RGB", (4, 4)), "GIF")
    with pytest.raises(ImageError, match="not a PNG, JPEG, BMP or WebP image"):
        load_image_rgb(gif)


def test_truncated_png_is_refused_as_a_truncated_png():
    data = encode(Image.fromarray(random_rgb(64, 64)), "PNG")
    with pytest.raises(ImageError, match="^image is a truncated PNG: the file ends inside its pixel data$"):
        load_image_rgb(data[: len(data) // 2])
    # cut inside its header: it starts like a PNG, so it is a truncated one, not "not a PNG"
    for cut in (8, 16, 30):
        with pytest.raises(ImageError, match=rf"^x.png is a truncated PNG \(or its header is damaged\).* {cut} bytes$"):
            load_image_rgb(data[:cut], name="x.png")


def test_truncated_jpeg_is_refused():
    data = encode(Image.fromarray(random_rgb(64, 64)), "JPEG")
    with pytest.raises(ImageError, match="truncated JPEG"):
        load_image_rgb(data[: len(data) // 2])


def test_empty_and_missing_files_are_refused(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty \(0 bytes\)"):
        load_image_rgb(empty)
    with pytest.raises(ImageError, match="does not exist"):
        load_image_rgb(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image_rgb(tmp_path)


def test_oversized_image_is_refused_from_its_header():
    data = bomb_png(10000, 6000)  # 60 Mpx: over our cap, under PIL's own
    message = r"image is 10000x6000 = 60 Mpx, over the 50 Mpx limit"
    with pytest.raises(ImageError, match=message):
        load_image_rgb(data)
    with pytest.raises(ImageError, match=message):
        verify_image(data)
    assert MAX_PIXELS == 50_000_000


def test_decompression_bomb_past_pils_own_limit_reports_its_real_size():
    data = bomb_png(20000, 20000)  # 400 Mpx in a few KB: PIL refuses it before telling its size
    assert len(data) < 200_000
    with pytest.raises(ImageError, match=r"^image is 20000x20000 = 400 Mpx, over the 50 Mpx limit$"):
        load_image_rgb(data)
    with pytest.raises(ImageError, match=r"^image is 20000x20000 = 400 Mpx"):
        verify_image(data)


def test_verify_image_passes_good_files_and_flags_bad_ones():
    verify_image(encode(Image.fromarray(random_rgb()), "PNG"))
    damaged = bytearray(encode(Image.fromarray(random_rgb()), "PNG"))
    damaged[40] ^= 0xFF  # inside the IDAT chunk: the CRC no longer matches
    with pytest.raises(ImageError):
        verify_image(bytes(damaged))


def test_resize_rgb_gives_a_square_of_the_size():
    out = resize_rgb(random_rgb(30, 50), 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


def test_resize_rgb_antialiases():
    # A 1-pixel checkerboard shrunk 4x must average to grey, not alias to black or white.
    board = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    out = resize_rgb(np.repeat(board[:, :, None], 3, axis=2), 16)
    assert np.abs(out.astype(int) - 127).max() <= 3


def test_resize_rgb_rejects_bad_input():
    with pytest.raises(ValueError, match="positive whole number"):
        resize_rgb(random_rgb(), 0)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        resize_rgb(np.zeros((4, 4), dtype=np.uint8), 8)
