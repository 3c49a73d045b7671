"""ghostnp.preprocess against an independent computation of timm's evaluation transform.

torchvision is not a test dependency, so the reference below re-derives its steps from torchvision's source
(``_compute_resized_output_size``, ``center_crop``, ``to_tensor``, ``normalize``): the resize and crop
arithmetic in plain Python, the crop as NumPy slicing, ``ToTensor`` and ``Normalize`` as the same torch
operations torchvision runs. The results must be identical to the last bit.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ghostnp.errors import ImageError
from ghostnp.images.decode import sample_image_path
from ghostnp.images.preprocess import center_crop, preprocess, resize_shorter_side, resized_size, to_normalized_array
from ghostnp.weights.pretrained import get_pretrained_config

torch = pytest.importorskip("torch")

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def torchvision_resized_hw(height, width, size):
    """torchvision.transforms.functional._compute_resized_output_size for an int size, as (H, W)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
    return new_height, new_width


def timm_eval_transform(rgb, image_size=224, scale_size=256):
    """Resize(256, BICUBIC) -> CenterCrop(224) -> ToTensor() -> Normalize(MEAN, STD), then a batch axis."""
    new_height, new_width = torchvision_resized_hw(rgb.height, rgb.width, scale_size)
    if (new_height, new_width) != (rgb.height, rgb.width):
        rgb = rgb.resize((new_width, new_height), Image.Resampling.BICUBIC)
    array = np.asarray(rgb)  # (H', W', 3), both sides >= 256 here, so no padding
    top = int(round((new_height - image_size) / 2.0))
    left = int(round((new_width - image_size) / 2.0))
    crop = np.ascontiguousarray(array[top : top + image_size, left : left + image_size])
    tensor = torch.from_numpy(crop).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    tensor.sub_(torch.as_tensor(MEAN)[:, None, None]).div_(torch.as_tensor(STD)[:, None, None])
    return tensor.unsqueeze(0).numpy()


def timm_load(path):
    with open(path, "rb") as file:
        return Image.open(file).convert("RGB")


def random_rgb(height, width, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- the whole transform ------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(height=st.integers(8, 600), width=st.integers(8, 600), seed=st.integers(0, 2**32 - 1))  # slivers: below
def test_preprocess_equals_timm_on_random_images(height, width, seed):
    pixels = random_rgb(height, width, seed)
    result = preprocess(pixels)
    assert result.shape == (1, 3, 224, 224) and result.dtype == np.float32
    np.testing.assert_array_equal(result, timm_eval_transform(Image.fromarray(pixels)))


@pytest.mark.parametrize(
    "height, width",
    [
        (1, 1),
        (1, 40),
        (40, 1),
        (2, 3),
        (100, 150),
        (150, 100),
        (224, 224),
        (255, 256),
        (256, 256),
        (256, 257),
        (257, 300),
        (300, 451),
        (451, 300),
        (1000, 999),
    ],
)
def test_preprocess_equals_timm_on_tiny_small_and_odd_sizes(height, width):
    pixels = random_rgb(height, width, seed=height * 1000 + width)
    np.testing.assert_array_equal(preprocess(pixels), timm_eval_transform(Image.fromarray(pixels)))


PHOTOGRAPHS = ["chelsea", "astronaut", "coffee", "rocket", "camera", "hubble_deep_field"]


@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_preprocess_equals_timm_on_real_photographs(name, tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    path = tmp_path / f"{name}.png"
    Image.fromarray(getattr(skimage_data, name)()).save(path)
    np.testing.assert_array_equal(preprocess(path), timm_eval_transform(timm_load(path)))


def test_preprocess_on_the_sample_image():
    path = sample_image_path()
    expected = timm_eval_transform(timm_load(path))
    np.testing.assert_array_equal(preprocess(path), expected)
    np.testing.assert_array_equal(preprocess(str(path)), expected)
    np.testing.assert_array_equal(preprocess(timm_load(path)), expected)
    np.testing.assert_array_equal(preprocess(np.asarray(timm_load(path))), expected)


def mode_image(mode, height, width, seed):
    """A random image of ``mode`` and its file name."""
    rng = np.random.default_rng(seed)
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 4, (height, width), dtype=np.uint8), mode="L").convert("P")
        image.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10, 30, 30, 200])
        image.info["transparency"] = 2
        return image, "palette.png"
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, (height, width), dtype=np.uint8) * 255).convert("1"), "bits.png"
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 400, (height, width), dtype=np.uint16)), "sixteen.png"
    if mode == "I":
        return Image.fromarray(rng.integers(-50, 400, (height, width), dtype=np.int32)), "int32.tif"
    if mode == "F":
        return Image.fromarray(rng.uniform(-20, 300, (height, width)).astype(np.float32)), "float.tif"
    channels = {"L": 1, "LA": 2, "RGBA": 4, "CMYK": 4}[mode]
    samples = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    image = Image.fromarray(samples[:, :, 0] if channels == 1 else samples, mode=mode)
    return image, "cmyk.tif" if mode == "CMYK" else f"{mode.lower()}.png"


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "I;16", "I", "F"])
def test_preprocess_equals_timm_in_every_mode(mode, tmp_path):
    image, file_name = mode_image(mode, height=197, width=300, seed=len(mode))
    path = tmp_path / file_name
    image.save(path, **({"transparency": 2} if mode == "P" else {}))
    with Image.open(path) as reopened:
        assert reopened.mode == mode
    np.testing.assert_array_equal(preprocess(path), timm_eval_transform(timm_load(path)))


# --- each step ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, expected",
    [
        ((451, 300), (384, 256)),
        ((300, 451), (256, 384)),
        ((256, 256), (256, 256)),
        ((100, 50), (512, 256)),
        ((1, 1), (256, 256)),
        ((3, 1000), (256, 85333)),
        ((257, 256), (257, 256)),
        ((7, 6), (298, 256)),
    ],
)
def test_resized_size_by_hand(size, expected):
    # 256 * 451 / 300 = 384.85 -> 384; 256 * 1000 / 3 = 85333.3 -> 85333; 256 * 7 / 6 = 298.67 -> 298
    assert resized_size(*size, 256) == expected


@settings(max_examples=200, deadline=None)
@given(width=st.integers(1, 5000), height=st.integers(1, 5000), shorter_side=st.integers(1, 600))
def test_resized_size_matches_torchvision_rule(width, height, shorter_side):
    new_height, new_width = torchvision_resized_hw(height, width, shorter_side)
    assert resized_size(width, height, shorter_side) == (new_width, new_height)


def test_resize_shorter_side_keeps_an_image_of_the_right_size():
    image = Image.new("RGB", (300, 256))
    assert resize_shorter_side(image, 256) is image


def test_resize_shorter_side_uses_the_named_filter():
    image = Image.fromarray(random_rgb(30, 40, seed=7))
    for name, resample in [
        ("bicubic", Image.Resampling.BICUBIC),
        ("bilinear", Image.Resampling.BILINEAR),
        ("nearest", Image.Resampling.NEAREST),
    ]:
        expected = image.resize((341, 256), resample)
        np.testing.assert_array_equal(np.asarray(resize_shorter_side(image, 256, name)), np.asarray(expected))
    with pytest.raises(ValueError, match="unknown interpolation 'lanczos'"):
        resize_shorter_side(image, 256, "lanczos")


def test_resize_refuses_an_aspect_ratio_that_would_explode():
    sliver = Image.new("RGB", (1, 400_000))  # 0.4 M pixels; 256 x 102,400,000 once resized
    with pytest.raises(ImageError, match=r"256 x 102400000"):
        resize_shorter_side(sliver, 256)
    with pytest.raises(ImageError, match="max_pixels=1,000"):
        resize_shorter_side(Image.new("RGB", (10, 20)), 256, max_pixels=1_000)


@pytest.mark.parametrize("width, left", [(224, 0), (225, 0), (226, 1), (257, 16), (258, 17), (259, 18), (260, 18)])
def test_center_crop_offset_rounds_half_to_even(width, left):
    # (257 - 224) / 2 = 16.5 -> 16 and (259 - 224) / 2 = 17.5 -> 18: Python's round, as torchvision
    columns = np.tile(np.arange(width, dtype=np.int32), (230, 1))  # (230, width): each pixel holds its x
    cropped = np.asarray(center_crop(Image.fromarray(columns), 224))
    assert cropped.shape == (224, 224)
    assert cropped[0, 0] == left and cropped[0, -1] == left + 223
    rows = np.asarray(center_crop(Image.fromarray(np.ascontiguousarray(columns.T)), 224))
    assert rows[0, 0] == left  # the same rule on the vertical axis


def test_center_crop_pads_a_small_image_with_black_as_torchvision():
    image = Image.fromarray(np.array([[1, 2, 3]], dtype=np.uint8))  # 3 x 1
    cropped = np.asarray(center_crop(image, 6))
    # width: pad (6 - 3) // 2 = 1 before, 2 after; height: pad 2 before, 3 after
    expected = np.zeros((6, 6), dtype=np.uint8)
    expected[2] = [0, 1, 2, 3, 0, 0]
    np.testing.assert_array_equal(cropped, expected)


def test_to_normalized_array_of_black_and_white_pixels():
    black_white = Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8))  # (1, 2, 3)
    result = to_normalized_array(black_white, MEAN, STD)
    assert result.shape == (3, 1, 2) and result.dtype == np.float32
    np.testing.assert_allclose(result[:, 0, 0], [-2.117904, -2.035714, -1.804444], rtol=1e-6)  # -mean / std
    np.testing.assert_allclose(result[:, 0, 1], [2.248908, 2.428571, 2.64], rtol=1e-6)  # (1 - mean) / std


def test_to_normalized_array_refuses_other_modes():
    with pytest.raises(ValueError, match="mode L"):
        to_normalized_array(Image.new("L", (2, 2)), MEAN, STD)


# --- configs ------------------------------------------------------------------------------------------------


def test_every_pretrained_model_uses_the_same_transform():
    pixels = random_rgb(120, 90, seed=3)
    expected = preprocess(pixels)
    for model in ("ghostnetv2_100", "ghostnetv2_130", "ghostnetv2_160", "ghostnet_100", "ghostnetv2_100.in1k"):
        np.testing.assert_array_equal(preprocess(pixels, model), expected)


def test_config_override_changes_size_crop_and_statistics():
    pixels = random_rgb(300, 400, seed=4)
    config = dataclasses.replace(
        get_pretrained_config("ghostnetv2_100"),
        input_size=(3, 160, 160),
        crop_pct=1.0,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        interpolation="bilinear",
    )
    resized = Image.fromarray(pixels).resize((213, 160), Image.Resampling.BILINEAR)  # int(160 * 400 / 300)
    top, left = 0, int(round((213 - 160) / 2.0))
    crop = np.asarray(resized)[top : top + 160, left : left + 160].transpose(2, 0, 1)
    expected = ((crop.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5))[np.newaxis]
    np.testing.assert_array_equal(preprocess(pixels, config=config), expected)


def test_crop_pct_sets_the_resize():
    config = dataclasses.replace(get_pretrained_config("ghostnetv2_100"), crop_pct=0.95)  # floor(224 / 0.95) = 235
    pixels = random_rgb(50, 50, seed=5)
    resized = Image.fromarray(pixels).resize((235, 235), Image.Resampling.BICUBIC)
    expected = to_normalized_array(center_crop(resized, 224), MEAN, STD)[np.newaxis]
    np.testing.assert_array_equal(preprocess(pixels, config=config), expected)


def test_non_square_input_size_is_refused():
    config = dataclasses.replace(get_pretrained_config("ghostnetv2_100"), input_size=(3, 224, 192))
    with pytest.raises(ValueError, match="not square"):
        preprocess(random_rgb(10, 10, seed=6), config=config)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="resnet50"):
        preprocess(random_rgb(10, 10, seed=6), "resnet50")


def test_bad_image_gives_an_image_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    with pytest.raises(ImageError, match="notes.jpg"):
        preprocess(path)
