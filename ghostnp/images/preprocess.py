"""timm's evaluation transform, step by step, with Pillow and NumPy only (no torchvision).

For the GhostNet configs (``input_size=(3, 224, 224)``, ``crop_pct=0.875``, bicubic) timm builds::

    transforms.Resize(256, interpolation=BICUBIC)      # 256 = floor(224 / 0.875)
    transforms.CenterCrop(224)
    transforms.ToTensor()                              # uint8 HWC -> float32 CHW in [0, 1]
    transforms.Normalize(mean, std)

Each step is a public function here, following torchvision's arithmetic to the pixel:
:func:`resize_shorter_side`, :func:`center_crop`, :func:`to_normalized_array`; :func:`preprocess` chains them.
"""

import math

import numpy as np

from ..errors import ImageError
from ..weights.pretrained import get_pretrained_config
from .decode import DEFAULT_MAX_PIXELS, load_image

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
"""Interpolation names as timm's configs spell them; each is Pillow's ``Image.Resampling`` of that name."""


def resized_size(width, height, shorter_side):
    """The (W, H) that ``torchvision.transforms.Resize(shorter_side)`` resizes a W x H image to.

    The shorter side becomes ``shorter_side``; the longer one becomes ``int(shorter_side * long / short)``
    (truncated, as torchvision does), so the aspect ratio is kept to within one pixel.

    Parameters
    ----------
    width, height : int
        Size of the image.
    shorter_side : int
        Target length of the shorter side.

    Returns
    -------
    tuple of int
        (new width, new height).

    Examples
    --------
    >>> resized_size(451, 300, 256)  # int(256 * 451 / 300) = int(384.85...)
    (384, 256)
    """
    short, long = min(width, height), max(width, height)
    new_long = int(shorter_side * long / short)
    return (shorter_side, new_long) if width <= height else (new_long, shorter_side)


def resize_shorter_side(image, shorter_side, interpolation="bicubic", *, max_pixels=DEFAULT_MAX_PIXELS):
    """Resize a PIL image so its shorter side is ``shorter_side`` pixels, keeping the aspect ratio.

    Parameters
    ----------
    image : PIL.Image.Image
        Size (W, H).
    shorter_side : int
        Target length of the shorter side (256 for the GhostNet configs).
    interpolation : {"bicubic", "bilinear", "nearest"}
        Pillow's filter (Pillow always antialiases when shrinking).
    max_pixels : int
        Largest resized width x height. A thin sliver (1 x 400000 pixels) passes the loader's limit but
        would become 256 x 102400000 here; it is refused before any memory is allocated.

    Returns
    -------
    PIL.Image.Image
        Size :func:`resized_size` (W, H); the image itself when that is already its size (as torchvision).

    Raises
    ------
    ImageError
        If the resized image would have more than ``max_pixels`` pixels.
    """
    from PIL import Image

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; expected one of {', '.join(INTERPOLATIONS)}")
    size = resized_size(*image.size, shorter_side)
    if size[0] * size[1] > max_pixels:
        raise ImageError(
            f"an image of {image.width} x {image.height} pixels would be resized to {size[0]} x {size[1]}, more "
            f"than max_pixels={max_pixels:,}: its aspect ratio is too extreme. Crop it to the object first."
        )
    if size == image.size:
        return image
    return image.resize(size, resample=Image.Resampling[interpolation.upper()])


def center_crop(image, size):
    """Cut the central ``size`` x ``size`` pixels out of a PIL image, as ``torchvision.transforms.CenterCrop``.

    The top-left corner is ``(int(round((W - size) / 2)), int(round((H - size) / 2)))`` with Python's
    round-half-to-even, so a 257-pixel side loses 16 pixels before and 17 after. A side shorter than
    ``size`` is first padded with black, ``(size - side) // 2`` before and the rest after.

    Parameters
    ----------
    image : PIL.Image.Image
        Size (W, H).
    size : int
        Side of the square crop.

    Returns
    -------
    PIL.Image.Image
        Size (size, size).
    """
    from PIL import Image

    width, height = image.size
    if width < size or height < size:
        padded = Image.new(image.mode, (max(width, size), max(height, size)))  # black, (max(W, size), max(H, size))
        padded.paste(image, (max(size - width, 0) // 2, max(size - height, 0) // 2))
        image, (width, height) = padded, padded.size
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return image.crop((left, top, left + size, top + size))  # (size, size)


def to_normalized_array(image, mean, std):
    """An RGB PIL image as a normalised float32 array, as ``ToTensor()`` then ``Normalize(mean, std)``.

    Computes ``(pixel / 255 - mean[c]) / std[c]`` in float32, the same operations in the same order as
    torchvision, so the result is identical to the last bit.

    Parameters
    ----------
    image : PIL.Image.Image
        Mode RGB, size (W, H).
    mean, std : sequence of 3 floats
        Per-channel statistics of [0, 1] pixels.

    Returns
    -------
    numpy.ndarray, shape (3, H, W), float32
    """
    if image.mode != "RGB":
        raise ValueError(f"to_normalized_array takes an RGB image, got mode {image.mode}; use load_image first")
    pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    scaled = pixels.astype(np.float32) / np.float32(255)  # (3, H, W) in [0, 1]
    mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    return (scaled - mean) / std  # (3, H, W)


def preprocess(image, model="ghostnetv2_100", *, config=None):
    """An image as the (1, 3, 224, 224) input the pretrained ``model`` expects (timm's evaluation transform).

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or numpy.ndarray
        Anything :func:`ghostnp.images.load_image` accepts (a path, a PIL image, a uint8 (H, W, 3) array).
    model : str
        Architecture or pretrained tag whose evaluation config is used (``ghostnp.weights.pretrained``).
    config : ghostnp.weights.pretrained.PretrainedConfig, optional
        Overrides ``model``: any object with ``input_size`` (3, S, S), ``crop_pct``, ``interpolation``,
        ``mean`` and ``std``.

    Returns
    -------
    numpy.ndarray, shape (1, 3, S, S), float32
        S = 224 for every GhostNet config.

    Raises
    ------
    ImageError
        If the image cannot be loaded (see :func:`ghostnp.images.load_image`).
    ValueError
        If ``model`` has no pretrained config, or the config asks for a non-square input.
    """
    if config is None:
        config = get_pretrained_config(model)
    _, crop_height, crop_width = config.input_size
    if crop_height != crop_width:
        raise ValueError(
            f"input_size {config.input_size} is not square; timm resizes those with ResizeKeepRatio, "
            "which ghostnp does not implement"
        )
    rgb = load_image(image)
    resized = resize_shorter_side(rgb, math.floor(crop_height / config.crop_pct), config.interpolation)
    cropped = center_crop(resized, crop_height)  # (S, S)
    return to_normalized_array(cropped, config.mean, config.std)[np.newaxis]  # (1, 3, S, S)
