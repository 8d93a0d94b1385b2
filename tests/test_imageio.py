import io

import cv2
import numpy as np
import pytest
from faceparse.core import imageio
from faceparse.core.imageio import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    colorize,
    load_mask,
    load_rgb,
    read_size,
    save_mask,
)
from faceparse.core.schemas import get_schema
from PIL import Image


def halves(w=40, h=20):
    """Left half red, right half blue: orientation mistakes show up as wrong colours in known places."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (255, 0, 0)
    a[:, w // 2:] = (0, 0, 255)
    return a


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_extensions_are_lower_case_suffixes():
    assert {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp"} == IMAGE_EXTENSIONS


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_rgb_roundtrip(tmp_path, suffix):
    a = halves()
    p = tmp_path / f"face{suffix}"
    Image.fromarray(a).save(p, **({"lossless": True} if suffix == ".webp" else {}))
    out = load_rgb(p)
    assert out.dtype == np.uint8 and out.shape == (20, 40, 3)
    assert np.array_equal(out, a)
    assert read_size(p) == (40, 20)


def test_jpeg_loads_close_to_original(tmp_path):
    p = tmp_path / "face.jpg"
    Image.fromarray(halves()).save(p, quality=95)
    out = load_rgb(p)
    assert out.shape == (20, 40, 3)
    assert out[10, 5, 0] > 200 and out[10, 35, 2] > 200


def test_exif_rotated_jpeg_is_upright(tmp_path):
    img = Image.fromarray(halves(40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; display rotated 90 degrees clockwise
    p = tmp_path / "rotated.jpg"
    img.save(p, exif=exif.tobytes(), quality=95)
    assert read_size(p) == (20, 40)
    out = load_rgb(p)
    assert out.shape == (40, 20, 3)
    # clockwise rotation brings the stored left (red) to the top
    assert out[5, 10, 0] > 200 and out[5, 10, 2] < 60
    assert out[35, 10, 2] > 200 and out[35, 10, 0] < 60


def test_exif_mirrored_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 2  # mirrored horizontally
    p = tmp_path / "mirrored.jpg"
    Image.fromarray(halves()).save(p, exif=exif.tobytes(), quality=95)
    assert read_size(p) == (40, 20)
    out = load_rgb(p)
    assert out[10, 5, 2] > 200 and out[10, 35, 0] > 200


def test_grayscale_becomes_rgb(tmp_path):
    p = tmp_path / "gray.png"
    Image.fromarray(np.full((8, 9), 77, np.uint8)).save(p)
    out = load_rgb(p)
    assert out.shape == (8, 9, 3) and (out == 77).all()


def test_bilevel_becomes_rgb(tmp_path):
    p = tmp_path / "bw.png"
    Image.fromarray(np.eye(6, dtype=bool)).save(p)
    out = load_rgb(p)
    assert out.shape == (6, 6, 3) and out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 0]


def test_rgba_composites_transparency_over_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 200
    a[:2, :, 3] = 255
    p = tmp_path / "alpha.png"
    Image.fromarray(a, "RGBA").save(p)
    out = load_rgb(p)
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[3, 3].tolist() == [255, 255, 255]


def test_la_image(tmp_path):
    p = tmp_path / "la.png"
    Image.new("LA", (5, 5), (50, 255)).save(p)
    assert (load_rgb(p) == 50).all()


def test_palette_image(tmp_path):
    img = Image.new("P", (6, 3))
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.paste(1, (0, 0, 3, 3))
    p = tmp_path / "palette.png"
    img.save(p)
    out = load_rgb(p)
    assert out[1, 1].tolist() == [10, 200, 30] and out[1, 5].tolist() == [0, 0, 0]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (4, 4))
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.paste(1, (0, 0, 2, 4))
    p = tmp_path / "palette_t.png"
    img.save(p, transparency=0)
    out = load_rgb(p)
    assert out[0, 0].tolist() == [10, 200, 30] and out[0, 3].tolist() == [255, 255, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(p, quality=95)  # pure red in CMYK
    assert Image.open(p).mode == "CMYK"
    out = load_rgb(p)
    assert out.shape == (10, 10, 3)
    r, g, b = out[5, 5].tolist()
    assert r > 200 and g < 60 and b < 60


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    a = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    p = tmp_path / "gray16.png"
    Image.fromarray(a).save(p)
    assert Image.open(p).mode.startswith("I")
    out = load_rgb(p)
    assert out.shape == (8, 8, 3)
    assert np.array_equal(out[..., 0], (a >> 8).astype(np.uint8))


def test_12bit_values_in_a_16bit_png_use_the_full_range(tmp_path):
    a = np.linspace(0, 4095, 64, dtype=np.uint16).reshape(8, 8)
    p = tmp_path / "gray12.png"
    Image.fromarray(a).save(p)
    out = load_rgb(p)
    assert np.array_equal(out[..., 0], (a >> 4).astype(np.uint8))
    assert out.max() == 255


def test_16bit_rgb_png(tmp_path):
    a = np.zeros((6, 7, 3), np.uint16)
    a[..., 2] = 65535  # BGR order for OpenCV: red channel full
    a[..., 0] = 30000
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), a)
    out = load_rgb(p)
    assert out.shape == (6, 7, 3)
    assert out[0, 0].tolist() == [255, 0, 30000 >> 8]


def test_non_ascii_spaced_path(tmp_path):
    folder = tmp_path / "Мои фото" / "лица и маски"
    folder.mkdir(parents=True)
    p = folder / "Фото лица 1.jpg"
    Image.fromarray(halves()).save(p)
    assert load_rgb(p).shape == (20, 40, 3)
    assert read_size(p) == (40, 20)
    m = folder / "маска 1.png"
    save_mask(m, np.ones((3, 3), np.uint8))
    assert load_mask(m).sum() == 9


def test_max_side_gives_a_reduced_upright_copy(tmp_path):
    p = tmp_path / "big.jpg"
    Image.fromarray(np.tile(halves(400, 200), (1, 1, 1))).save(p)
    small = load_rgb(p, max_side=50)
    assert max(small.shape[:2]) <= 50 and small.shape[1] > small.shape[0]
    p2 = tmp_path / "big.png"
    Image.fromarray(halves(400, 200)).save(p2)
    assert load_rgb(p2, max_side=64).shape == (32, 64, 3)


# --- bad files: every one is an ImageLoadError that names the file -------------------------------------------------

def _expect_error(path, *fragments, **kw):
    with pytest.raises(ImageLoadError) as err:
        load_rgb(path, **kw)
    text = str(err.value)
    assert str(path) in text and err.value.path == path
    for f in fragments:
        assert f in text, text
    return err.value


def test_truncated_jpeg(tmp_path):
    data = encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    _expect_error(p, "truncated")


def test_truncated_png(tmp_path):
    data = encoded(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)), "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    _expect_error(p, "truncated")


def test_corrupt_png_data(tmp_path):
    data = bytearray(encoded(Image.fromarray(np.random.default_rng(2).integers(0, 255, (32, 32, 3), np.uint8)), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 20: idat + 60] = b"\x00" * 40
    p = tmp_path / "corrupt.png"
    p.write_bytes(bytes(data))
    _expect_error(p)


def test_garbage_bytes_with_image_suffix(tmp_path):
    p = tmp_path / "noise.jpg"
    p.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    _expect_error(p, "not a recognised image")


def test_text_file_renamed_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("these are my notes, not a picture")
    _expect_error(p, "not a recognised image")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    _expect_error(p, "empty")


def test_unsupported_formats_are_named(tmp_path):
    gif = tmp_path / "animated.png"
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    _expect_error(gif, "unsupported format", "GIF")
    svg = tmp_path / "vector.png"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    _expect_error(svg, "unsupported format", "text file")
    heic = tmp_path / "phone.jpg"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    _expect_error(heic, "HEIC")


def test_missing_file_and_folder(tmp_path):
    _expect_error(tmp_path / "absent.jpg", "not found")
    d = tmp_path / "dir.jpg"
    d.mkdir()
    _expect_error(d, "folder")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    Image.new("L", (120, 100)).save(p)
    _expect_error(p, "12,000 pixels", "decompression bomb", max_pixels=5000)
    monkeypatch.setattr(imageio, "MAX_PIXELS", 5000)
    _expect_error(p, "decompression bomb")
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        read_size(p)


def test_pil_level_bomb_is_refused_with_our_error(tmp_path, monkeypatch):
    """A header far above PIL's own limit is stopped inside PIL; it must still be our clear error."""
    p = tmp_path / "huge.png"
    Image.new("L", (300, 300)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    _expect_error(p, "decompression bomb")


# --- masks -----------------------------------------------------------------------------------------------------------

def test_save_mask_palette_png_roundtrip(tmp_path):
    schema = get_schema("celebamask-hq")
    mask = np.arange(19, dtype=np.uint8).repeat(3).reshape(3, 19)
    p = tmp_path / "masks" / "1.png"
    save_mask(p, mask, schema)
    img = Image.open(p)
    assert img.mode == "P"
    assert img.getpalette()[3 * 13: 3 * 14] == list(schema.colors[13])
    assert np.array_equal(load_mask(p), mask)
    assert [x.name for x in p.parent.iterdir()] == ["1.png"]


def test_save_mask_without_schema_is_grayscale_index(tmp_path):
    p = tmp_path / "m.png"
    save_mask(p, np.array([[0, 1], [2, 200]], np.int64))
    assert Image.open(p).mode == "L"
    assert load_mask(p).tolist() == [[0, 1], [2, 200]]


def test_save_mask_refuses_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        save_mask(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="integer"):
        save_mask(tmp_path / "a.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="outside schema 'lapa'"):
        save_mask(tmp_path / "a.png", np.full((2, 2), 11, np.uint8), get_schema("lapa"))
    assert not any(tmp_path.iterdir())


def test_load_mask_refuses_colour_images(tmp_path):
    p = tmp_path / "color_mask.png"
    Image.fromarray(halves()).save(p)
    with pytest.raises(ImageLoadError, match="RGB image; a mask must be a single-channel") as err:
        load_mask(p)
    assert str(p) in str(err.value)


def test_load_mask_damaged(tmp_path):
    p = tmp_path / "m.png"
    save_mask(p, np.random.default_rng(0).integers(0, 19, (64, 64)))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="damaged"):
        load_mask(p)


def test_colorize_uses_schema_colors():
    schema = get_schema("masked-faces")
    out = colorize(np.array([[0, 1, 2]], np.uint8), schema)
    assert out.shape == (1, 3, 3) and out.dtype == np.uint8
    assert [tuple(c) for c in out[0]] == list(schema.colors)


@pytest.mark.parametrize("late", [False, True])
def test_read_size_agrees_with_load_rgb_when_png_exif_follows_the_pixels(tmp_path, late):
    import io
    import struct
    import zlib

    from faceparse.core.imageio import read_size

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    stored = np.zeros((80, 120, 3), np.uint8)
    stored[:30, :50] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = exif.tobytes()
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "PNG")
    png = buffer.getvalue()
    at = png.rindex(b"IEND") - 4 if late else png.index(b"IDAT") - 4
    path = tmp_path / "rotated.png"
    path.write_bytes(png[:at] + chunk(b"eXIf", raw[6:] if raw.startswith(b"Exif") else raw) + png[at:])
    upright = load_rgb(path)
    assert upright.shape == (120, 80, 3)
    assert read_size(path) == (80, 120)
