"""Open images from anywhere, safely, and exactly the way timm's evaluation path does.

timm feeds its pretrained models ``Image.open(f).convert('RGB')``. :func:`load_image` gives the same RGB image
for every file Pillow decodes that way, and adds the checks an image from a stranger needs:

- **Formats** are limited to :data:`ALLOWED_FORMATS`, recognised by their magic bytes (never by the file
  name). EPS and PostScript are never opened: Pillow hands them to Ghostscript.
- **Size** is checked from the header, before any pixel is decoded (``Image.open`` is lazy): an image with
  more than ``max_pixels`` pixels is refused, so a small file claiming 30000 x 30000 allocates nothing.
- **Pillow's global settings** (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``) are read,
  never written: a truncated file is an error, as it is in timm.
- **Every failure** (missing file, empty file, text named ``.jpg``, truncated data, unknown format) is one
  :class:`~ghostnp.errors.ImageError` that names the file and says what to do.

What ``.convert('RGB')`` does to each Pillow mode, and therefore what ghostnp does by default:

==========================  =====================================================================
mode                        result
==========================  =====================================================================
RGB                         unchanged
L, 1                        grey copied to R, G and B (``1`` gives 0 or 255)
LA, RGBA                    alpha **dropped, not composited**: transparent pixels keep their colour
P (with transparency)       palette colours looked up; the transparent index keeps its palette colour
CMYK                        ``R = round((255 - C) * (255 - K) / 255)``, likewise G, B (no ICC profile)
I;16, I, F                  values **clipped** to 0..255 (not rescaled): a 16-bit photo comes out
                            nearly white. Pass ``rescale_16bit=True`` to map 0..65535 to 0..255
==========================  =====================================================================

Multi-frame files (GIF, APNG, multi-page TIFF) give their first frame. EXIF orientation is **not** applied
(timm does not apply it, and the pretrained accuracy was measured without it); pass ``exif_transpose=True``
to rotate phone photos upright first.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ImageError

ALLOWED_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "PPM", "TIFF", "WEBP")
"""Pillow format names :func:`load_image` opens; any other file, whatever its name, is refused."""

DEFAULT_MAX_PIXELS = 89_478_485
"""Largest width x height accepted by default: Pillow's own decompression-bomb warning threshold
(about 0.27 GB once decoded to RGB), but enforced as an error and without touching Pillow's settings."""

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Pillow modes holding 16-bit (or wider integer) samples, the ones ``rescale_16bit`` applies to."""

SAMPLE_IMAGE_NAME = "chelsea.jpg"

_WHAT_TO_DO = "Check that the file is a complete image (open it in an image viewer), or re-save it as PNG or JPEG."


def sample_image_path() -> Path:
    """The photograph shipped with ghostnp: Chelsea the cat (CC0, from scikit-image; see ``ghostnp/data/README.md``).

    Returns
    -------
    pathlib.Path
        Path of a 451 x 300 RGB JPEG inside the installed package.
    """
    return Path(str(resources.files("ghostnp").joinpath("data", SAMPLE_IMAGE_NAME)))


def load_image(source, *, max_pixels=DEFAULT_MAX_PIXELS, exif_transpose=False, rescale_16bit=False):
    """Open an image as timm does (``Image.open(f).convert('RGB')``), with the safety checks of this module.

    Parameters
    ----------
    source : str, os.PathLike, PIL.Image.Image or numpy.ndarray
        A file path; a PIL image (any mode, left unchanged; the caller opened it, so the format allowlist
        is not applied, but the pixel limit is); or a uint8 array of shape (H, W, 3) RGB,
        (H, W) or (H, W, 1) grey, or (H, W, 4) RGBA (alpha dropped, as for an RGBA file). Float arrays are
        refused: their range (0..1 or 0..255) would be a guess.
    max_pixels : int or None
        Largest width x height accepted, checked before decoding. None accepts any size that Pillow's own
        global limit (``Image.MAX_IMAGE_PIXELS``) accepts.
    exif_transpose : bool
        Rotate or flip the image as its EXIF orientation tag says, before converting. Off by default, as in
        timm.
    rescale_16bit : bool
        For modes I;16 and I, map 0..65535 linearly onto 0..255 (``round(v / 257)``, values clipped to
        0..65535) instead of Pillow's clipping to 0..255. Off by default, as in timm. Mode F is always clipped.

    Returns
    -------
    PIL.Image.Image
        A new image of mode RGB, size (W, H), fully decoded.

    Raises
    ------
    ImageError
        If the file is missing, empty, truncated, not an image in :data:`ALLOWED_FORMATS`, larger than
        ``max_pixels``, or if the array has the wrong shape or dtype. The message names the file.
    TypeError
        If ``source`` is none of the accepted types.
    """
    from PIL import Image

    if isinstance(source, Image.Image):
        image, name = source, _describe_pil_image(source)
    elif isinstance(source, np.ndarray):
        image, name = _image_from_array(source), f"array of shape {source.shape}"
    elif isinstance(source, (str, os.PathLike)):
        return _load_file(Path(source), max_pixels, exif_transpose, rescale_16bit)
    else:
        raise TypeError(f"load_image takes a file path, a PIL image or a numpy array, not {type(source).__name__}")
    _check_pixel_count(image.size, max_pixels, name)
    try:
        return _to_rgb(image, exif_transpose, rescale_16bit)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"cannot decode the {name}: {_reason(error)}. {_WHAT_TO_DO}") from error


def _load_file(path, max_pixels, exif_transpose, rescale_16bit):
    """Open ``path`` with the format allowlist, check its size from the header, then decode and convert."""
    from PIL import Image

    try:
        with open(path, "rb") as file, Image.open(file, formats=_registered_allowed_formats()) as image:
            _check_pixel_count(image.size, max_pixels, f"image file {path}")
            image.load()  # decodes the first frame; raises on truncated data
            return _to_rgb(image, exif_transpose, rescale_16bit)
    except ImageError:
        raise
    except FileNotFoundError as error:
        raise ImageError(f"image file {path} does not exist. Check the path and the current folder.") from error
    except IsADirectoryError as error:
        raise ImageError(f"{path} is a folder, not an image file. Pass the image files inside it.") from error
    except Image.UnidentifiedImageError as error:
        reason = (
            "it is empty (0 bytes)"
            if path.stat().st_size == 0
            else (f"it is not an image in one of the allowed formats ({', '.join(ALLOWED_FORMATS)})")
        )
        raise ImageError(f"cannot read image file {path}: {reason}. {_WHAT_TO_DO}") from error
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"image file {path} is too large for Pillow's global limit Image.MAX_IMAGE_PIXELS: {_reason(error)}. "
            "Shrink it first, or raise that limit if you trust the file."
        ) from error
    except Exception as error:  # any other decoder failure on an untrusted file is a bad file, never a crash
        raise ImageError(f"cannot decode image file {path}: {_reason(error)}. {_WHAT_TO_DO}") from error


def _reason(error):
    """Pillow's message for ``error``, without its final full stop, to quote inside a sentence."""
    return str(error).rstrip(".")


def _registered_allowed_formats():
    """The names in :data:`ALLOWED_FORMATS` that this Pillow build can open (WEBP needs libwebp)."""
    from PIL import Image

    Image.init()  # registers every plugin; registering runs no decoder
    return [name for name in ALLOWED_FORMATS if name in Image.OPEN]


def _check_pixel_count(size, max_pixels, name):
    """Refuse an image of ``size`` (W, H) with more than ``max_pixels`` pixels, before anything is decoded."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"the {name} is empty: {width} x {height} pixels")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"the {name} is too large: {width} x {height} = {width * height:,} pixels, "
            f"more than max_pixels={max_pixels:,}. "
            "Shrink it first, or pass a larger max_pixels if you trust the file."
        )


def _to_rgb(image, exif_transpose, rescale_16bit):
    """``image.convert('RGB')`` (a new image), after the optional EXIF rotation and 16-bit rescaling."""
    from PIL import Image, ImageOps

    if exif_transpose:
        image = ImageOps.exif_transpose(image)
    if rescale_16bit and image.mode in SIXTEEN_BIT_MODES:
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)  # (H, W)
        image = Image.fromarray(np.rint(samples / 257.0).astype(np.uint8))  # mode L
    return image.convert("RGB")


def _image_from_array(array):
    """A PIL image of a uint8 array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."""
    from PIL import Image

    if array.dtype.kind == "f":
        finite = "" if np.isfinite(array).all() else " and contains NaN or Inf"
        raise ImageError(
            f"the array has dtype {array.dtype}{finite}; ghostnp takes uint8 images (0..255). "
            "For a float image in [0, 1] pass np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)."
        )
    if array.dtype != np.uint8:
        raise ImageError(
            f"the array has dtype {array.dtype}; ghostnp takes uint8 images (0..255). "
            "Convert it first, e.g. with skimage.util.img_as_ubyte."
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))) or array.size == 0:
        raise ImageError(
            f"the array has shape {array.shape}; expected a non-empty (H, W) or (H, W, 1) grey, "
            "(H, W, 3) RGB or (H, W, 4) RGBA image"
        )
    pixels = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array  # (H, W, 1) -> (H, W)
    return Image.fromarray(np.ascontiguousarray(pixels))  # mode L, RGB or RGBA from the shape


def _describe_pil_image(image):
    """``"PIL image photo.jpg"`` for an image opened from a file, ``"PIL image (mode RGBA)"`` otherwise."""
    file_name = getattr(image, "filename", "")
    return f"PIL image {file_name}" if file_name else f"PIL image (mode {image.mode})"
