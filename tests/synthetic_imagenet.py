"""Labelled image folders in every layout ``ghostnp.evaluate`` reads, made from real photographs.

The photographs are scikit-image's (``skimage.data``, shipped with the package, no download); each image is
a crop of one, flipped or not, resized to a given size, so that every file is a different, natural image.
Used by ``tests/test_evaluate.py`` and ``benchmarks/pipeline.py``.
"""

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ghostnp.images.labels import imagenet_classes

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera", "cat", "hubble_deep_field")
LAYOUTS = ("wnid folders", "index folders", "val.txt", "wnid per line", "kaggle csv")


def photographs():
    """scikit-image's colour and grey photographs as (H, W, 3) uint8 arrays."""
    import skimage.data

    arrays = []
    for name in PHOTOS:
        array = getattr(skimage.data, name)()
        arrays.append(np.repeat(array[:, :, np.newaxis], 3, axis=2) if array.ndim == 2 else array[:, :, :3])
    return arrays


def photo_variants(count, size=(500, 375), seed=0):
    """``count`` images of ``size`` (W, H): random crops (half to all of each side) of the photographs,
    mirrored half of the time, resized with bilinear filtering; deterministic for a ``seed``."""
    rng = np.random.default_rng(seed)
    photos = photographs()
    images = []
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width = photo.shape[:2]
        crop_h, crop_w = int(height * rng.uniform(0.5, 1.0)), int(width * rng.uniform(0.5, 1.0))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        crop = photo[top : top + crop_h, left : left + crop_w]  # (crop_h, crop_w, 3)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]  # mirrored left to right
        images.append(Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.Resampling.BILINEAR))
    return images


def write_images(folder, count, size=(500, 375), seed=0, quality=90):
    """Save :func:`photo_variants` as ``folder/img_0000.JPEG`` ... (JPEG, ``quality``); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(photo_variants(count, size, seed)):
        path = folder / f"img_{i:04d}.JPEG"
        image.save(path, quality=quality)
        paths.append(path)
    return paths


def write_layout(root, layout, files, labels):
    """Copy ``files`` (image paths) labelled ``labels`` (class indices) into ``root`` in ``layout``.

    Returns the labels file to pass to ``ghostnp.evaluate`` (None for class folders). Flat layouts keep each
    file's name; class folders prefix nothing, so names need only be unique per class.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    classes = imagenet_classes()
    if layout in ("wnid folders", "index folders"):
        for path, label in zip(files, labels):
            folder = root / (classes[label].wnid if layout == "wnid folders" else str(label))
            folder.mkdir(exist_ok=True)
            shutil.copy(path, folder / Path(path).name)
        return None
    images = root / "images"
    images.mkdir(exist_ok=True)
    for path in files:
        shutil.copy(path, images / Path(path).name)
    pairs = sorted((Path(path).name, label) for path, label in zip(files, labels))
    if layout == "val.txt":  # 'file_name class', the class as an index on even lines and a WordNet id on odd ones
        lines = [f"{name} {label if i % 2 == 0 else classes[label].wnid}" for i, (name, label) in enumerate(pairs)]
        labels_file = root / "val.txt"
    elif layout == "wnid per line":
        lines = [classes[label].wnid for _, label in pairs]
        labels_file = root / "synset_labels.txt"
    elif layout == "kaggle csv":  # ImageId without its suffix; boxes 'wnid x_min y_min x_max y_max', repeated
        lines = ["ImageId,PredictionString"] + [
            f"{Path(name).stem},{classes[label].wnid} 10 20 300 200 {classes[(label + 1) % 1000].wnid} 0 0 5 5"
            for name, label in reversed(pairs)
        ]
        labels_file = root / "LOC_val_solution.csv"
    else:
        raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    labels_file.write_text("\n".join(lines) + "\n")
    return labels_file


def layout_root(root, layout):
    """The folder to pass to ``ghostnp.evaluate`` for a layout written by :func:`write_layout` into ``root``."""
    return Path(root) if layout in ("wnid folders", "index folders") else Path(root) / "images"
