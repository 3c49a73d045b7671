"""ghostnp.images: images from the wild load as timm loads them, or fail with one clear ImageError."""

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile

from ghostnp.errors import ImageError
from ghostnp.images.decode import DEFAULT_MAX_PIXELS, load_image, sample_image_path


def timm_load(path):
    """timm's evaluation path, the behaviour load_image must reproduce by default."""
    with open(path, "rb") as file:
        return Image.open(file).convert("RGB")


def pixels(image):
    return np.asarray(image)


def grey_to_rgb(values):
    values = np.asarray(values, dtype=np.uint8)
    return np.stack([values] * 3, axis=-1)


# --- every Pillow mode: (mode on disk, file name, image, save options, the RGB pixels expected) -------------


def case_l():
    grey = np.array([[0, 100, 255], [7, 8, 9]], dtype=np.uint8)
    return "L", "grey.png", Image.fromarray(grey), {}, grey_to_rgb(grey)


def case_la():
    grey = np.array([[0, 100, 255], [7, 8, 9]], dtype=np.uint8)
    alpha = np.array([[0, 0, 255], [128, 0, 255]], dtype=np.uint8)
    image = Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA")
    return "LA", "grey_alpha.png", image, {}, grey_to_rgb(grey)  # alpha dropped, not composited


def case_bilevel():
    image = Image.new("1", (3, 2))
    for xy in [(1, 0), (0, 1), (2, 1)]:
        image.putpixel(xy, 1)
    return "1", "bilevel.png", image, {}, grey_to_rgb([[0, 255, 0], [255, 0, 255]])


def case_palette_with_transparency():
    image = Image.new("P", (3, 2), 0)
    image.putpalette([10, 20, 30, 200, 100, 0])
    image.putpixel((1, 0), 1)
    image.putpixel((2, 1), 1)
    expected = np.array([[[10, 20, 30], [200, 100, 0], [10, 20, 30]], [[10, 20, 30], [10, 20, 30], [200, 100, 0]]])
    # index 0 is transparent: it keeps its palette colour (timm does not composite onto a background)
    return "P", "palette.png", image, {"transparency": 0}, expected.astype(np.uint8)


def case_rgba():
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 255], [1, 2, 3, 128]]], dtype=np.uint8)
    return "RGBA", "rgba.png", Image.fromarray(rgba), {}, rgba[:, :, :3]


def case_cmyk():
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 128, 0, 64]]], dtype=np.uint8)
    # Pillow's conversion without colour management, by hand: R = round((255 - C) * (255 - K) / 255), and so on;
    # the last pixel: G = round(127 * 191 / 255) = round(95.1) = 95
    expected = np.array([[[255, 255, 255], [0, 255, 255], [0, 0, 0], [191, 95, 191]]], dtype=np.uint8)
    return "CMYK", "cmyk.tif", Image.fromarray(cmyk, mode="CMYK"), {}, expected


def case_sixteen_bit_png():
    samples = np.array([[0, 100, 255, 256, 1000, 65535]], dtype=np.uint16)
    clipped = grey_to_rgb([[0, 100, 255, 255, 255, 255]])  # clipped to 0..255, not rescaled (as timm)
    return "I;16", "sixteen_bit.png", Image.fromarray(samples), {}, clipped


def case_int32_tiff():
    samples = np.array([[-5, 0, 100, 255, 256, 70000]], dtype=np.int32)
    return "I", "int32.tif", Image.fromarray(samples), {}, grey_to_rgb([[0, 0, 100, 255, 255, 255]])


def case_float_tiff():
    samples = np.array([[-1.0, 0.0, 100.0, 254.0, 255.0, 300.0]], dtype=np.float32)
    return "F", "float.tif", Image.fromarray(samples), {}, grey_to_rgb([[0, 0, 100, 254, 255, 255]])


def case_multi_frame_gif():
    red, blue = Image.new("RGB", (4, 3), (255, 0, 0)), Image.new("RGB", (4, 3), (0, 0, 255))
    expected = np.broadcast_to(np.array([255, 0, 0], dtype=np.uint8), (3, 4, 3))  # first frame only
    return "P", "animated.gif", red, {"save_all": True, "append_images": [blue], "duration": 100}, expected


MODE_CASES = [
    case_l,
    case_la,
    case_bilevel,
    case_palette_with_transparency,
    case_rgba,
    case_cmyk,
    case_sixteen_bit_png,
    case_int32_tiff,
    case_float_tiff,
    case_multi_frame_gif,
]


def write_case(case, folder):
    mode, file_name, image, save_options, expected = case()
    path = folder / file_name
    image.save(path, **save_options)
    with Image.open(path) as reopened:
        assert reopened.mode == mode, "the test file does not hold the mode this case is about"
    return path, expected


@pytest.mark.parametrize("case", MODE_CASES, ids=lambda case: case.__name__)
def test_every_mode_gives_the_documented_rgb_pixels(case, tmp_path):
    path, expected = write_case(case, tmp_path)
    image = load_image(path)
    assert image.mode == "RGB"
    np.testing.assert_array_equal(pixels(image), expected)
    np.testing.assert_array_equal(pixels(image), pixels(timm_load(path)))


def test_multi_frame_gif_really_has_two_frames(tmp_path):
    path, _ = write_case(case_multi_frame_gif, tmp_path)
    with Image.open(path) as image:
        assert image.n_frames == 2


def test_cmyk_jpeg_matches_timm(tmp_path):
    path = tmp_path / "cmyk.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 24, 4), dtype=np.uint8), mode="CMYK").save(path, quality=95)
    np.testing.assert_array_equal(pixels(load_image(path)), pixels(timm_load(path)))


def test_rescale_16bit_maps_the_full_range(tmp_path):
    path = tmp_path / "sixteen_bit.png"
    Image.fromarray(np.array([[0, 257, 32896, 65535, 128]], dtype=np.uint16)).save(path)
    # round(v / 257): 128 / 257 = 0.498 -> 0, 32896 / 257 = 128 exactly
    np.testing.assert_array_equal(pixels(load_image(path, rescale_16bit=True)), grey_to_rgb([[0, 1, 128, 255, 0]]))


def test_rescale_16bit_leaves_8_bit_images_alone(tmp_path):
    path, expected = write_case(case_l, tmp_path)
    np.testing.assert_array_equal(pixels(load_image(path, rescale_16bit=True)), expected)


# --- EXIF orientation -----------------------------------------------------------------------------------


def write_rotated_jpeg(path):
    """A 40 x 20 (W x H) JPEG, left half black, right half white, tagged 'rotate 90 clockwise to view'."""
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; view by rotating 90 degrees clockwise
    image.convert("RGB").save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_ignored_by_default_as_in_timm(tmp_path):
    path = tmp_path / "phone.jpg"
    write_rotated_jpeg(path)
    image = load_image(path)
    assert image.size == (40, 20)
    np.testing.assert_array_equal(pixels(image), pixels(timm_load(path)))


def test_exif_transpose_turns_the_image_upright(tmp_path):
    path = tmp_path / "phone.jpg"
    write_rotated_jpeg(path)
    image = load_image(path, exif_transpose=True)
    assert image.size == (20, 40)
    grey = pixels(image)[:, :, 0].astype(int)
    assert grey[:20].mean() < 30 and grey[20:].mean() > 225  # the left half (black) is now on top


# --- bad files: one ImageError naming the file --------------------------------------------------------


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width, height):
    """A valid-looking RGB PNG of a few bytes whose header claims width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixel_rows = zlib.compress(b"\x00" * 16)  # far too little data for the claimed size
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixel_rows) + png_chunk(b"IEND", b"")


def truncated_jpeg():
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()[: len(buffer.getvalue()) * 6 // 10]


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"

BAD_FILES = {  # file name -> (bytes or None for "do not create", words the message must contain)
    "truncated.jpg": (truncated_jpeg(), "truncated"),
    "empty.jpg": (b"", "empty"),
    "notes.jpg": (b"These are my holiday notes, not a photograph.\n", "not an image in one of the allowed formats"),
    "missing.jpg": (None, "does not exist"),
    "drawing.eps": (EPS, "not an image in one of the allowed formats"),
    "drawing.jpg": (EPS, "not an image in one of the allowed formats"),
    "huge.png": (png_claiming(30000, 30000), "too large"),
}


@pytest.mark.parametrize("file_name", BAD_FILES)
def test_bad_file_gives_one_clear_image_error(file_name, tmp_path):
    content, words = BAD_FILES[file_name]
    path = tmp_path / file_name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert str(path) in str(error.value)
    assert words in str(error.value)


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_eps_never_reaches_ghostscript_or_the_eps_parser(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: calls.append("_open"))
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "load", lambda self, **kwargs: calls.append("load"))
    for file_name in ("drawing.eps", "drawing.jpg"):
        (tmp_path / file_name).write_bytes(EPS)
        with pytest.raises(ImageError):
            load_image(tmp_path / file_name)
    assert calls == []


def test_pixel_limit_holds_when_pillows_own_limit_is_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a user who disabled Pillow's check
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(30000, 30000))
    with pytest.raises(ImageError, match=r"900,000,000 pixels, more than max_pixels=89,478,485"):
        load_image(path)


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(2000, 1000))  # 2 M pixels claimed, 16 bytes of pixel data
    with pytest.raises(ImageError, match="more than max_pixels=1,999,999"):
        load_image(path, max_pixels=1_999_999)
    with pytest.raises(ImageError, match="cannot decode"):  # the decoder is reached only within the limit
        load_image(path, max_pixels=2_000_000)
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(path, max_pixels=None)


def test_default_pixel_limit_is_pillows_warning_threshold():
    assert DEFAULT_MAX_PIXELS == 89_478_485


def test_pillow_global_flags_are_untouched(tmp_path):
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    assert before == (89_478_485, False), "another test left Pillow's global flags changed"
    for file_name, (content, _) in BAD_FILES.items():
        if content is not None:
            (tmp_path / file_name).write_bytes(content)
        with pytest.raises(ImageError):
            load_image(tmp_path / file_name)
    for case in MODE_CASES:
        load_image(write_case(case, tmp_path)[0], max_pixels=None, exif_transpose=True, rescale_16bit=True)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


# --- PIL images and arrays ------------------------------------------------------------------------------


def test_pil_image_is_converted_without_being_changed():
    image = Image.new("P", (3, 2), 1)
    image.putpalette([0, 0, 0, 9, 8, 7])
    rgb = load_image(image)
    assert image.mode == "P" and rgb is not image
    np.testing.assert_array_equal(pixels(rgb), np.full((2, 3, 3), [9, 8, 7], dtype=np.uint8))


def test_rgb_pil_image_gives_a_copy():
    image = Image.new("RGB", (3, 2), (1, 2, 3))
    rgb = load_image(image)
    assert rgb is not image
    np.testing.assert_array_equal(pixels(rgb), pixels(image))


def test_pil_image_obeys_the_pixel_limit():
    with pytest.raises(ImageError, match="PIL image .*more than max_pixels=5"):
        load_image(Image.new("RGB", (3, 2)), max_pixels=5)


def test_empty_pil_image_is_refused():
    with pytest.raises(ImageError, match="empty: 0 x 5 pixels"):
        load_image(Image.new("RGB", (0, 5)))


def test_truncated_pil_image_gives_an_image_error(tmp_path):
    path = tmp_path / "truncated.jpg"
    path.write_bytes(truncated_jpeg())
    with Image.open(path) as lazy:  # opened by the caller, not yet decoded
        with pytest.raises(ImageError, match="truncated.jpg"):
            load_image(lazy)


def test_uint8_rgb_array():
    array = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = load_image(array)
    assert image.mode == "RGB" and image.size == (7, 5)
    np.testing.assert_array_equal(pixels(image), array)


def test_strided_array_view():
    array = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pixels(load_image(array[::2, 1::3])), array[::2, 1::3])


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_grey_array_is_copied_to_three_channels(shape):
    grey = np.random.default_rng(4).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(pixels(load_image(grey)), grey_to_rgb(grey.reshape(5, 7)))


def test_rgba_array_drops_alpha_like_an_rgba_file():
    rgba = np.random.default_rng(5).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(pixels(load_image(rgba)), rgba[:, :, :3])


@pytest.mark.parametrize(
    "array, words",
    [
        (np.full((4, 4, 3), 0.5, dtype=np.float32), "dtype float32; ghostnp takes uint8"),
        (np.full((4, 4, 3), np.nan), "contains NaN or Inf"),
        (np.array([[[0.0, np.inf, 0.0]]]), "contains NaN or Inf"),
        (np.zeros((4, 4, 3), dtype=np.uint16), "dtype uint16"),
        (np.zeros((4, 4, 3), dtype=bool), "dtype bool"),
        (np.zeros((4, 4, 2), dtype=np.uint8), r"shape \(4, 4, 2\)"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), r"shape \(2, 4, 4, 3\)"),
        (np.zeros((0, 4, 3), dtype=np.uint8), r"shape \(0, 4, 3\)"),
    ],
)
def test_unusable_arrays_are_refused(array, words):
    with pytest.raises(ImageError, match=words):
        load_image(array)


def test_array_obeys_the_pixel_limit():
    with pytest.raises(ImageError, match="array of shape"):
        load_image(np.zeros((3, 4, 3), dtype=np.uint8), max_pixels=11)


def test_other_types_are_a_type_error():
    with pytest.raises(TypeError, match="bytes"):
        load_image(b"\x89PNG")


# --- the sample image -------------------------------------------------------------------------------------


def test_sample_image_is_a_small_rgb_jpeg():
    path = sample_image_path()
    assert path.is_file() and path.stat().st_size < 60_000
    with Image.open(path) as image:
        assert image.format == "JPEG"
    image = load_image(path)
    assert image.size == (451, 300)


def test_sample_image_licence_is_recorded():
    readme = (sample_image_path().parent / "README.md").read_text(encoding="utf-8")
    assert sample_image_path().name in readme and "CC0" in readme


def test_importing_the_module_does_not_import_pillow():
    code = "import sys, ghostnp.images.preprocess, ghostnp.images.labels; print('PIL' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
