"""Labelled image sets in the layouts people have, read into one list of (file, class index) pairs.

:func:`find_labelled_images` recognises, from the folder and the optional labels file:

=================  ======================================================================================
layout             what it looks like
=================  ======================================================================================
wnid folders       ``root/n01440764/*.JPEG``: one folder per class, named by WordNet id (torchvision's and
                   timm's ``ImageFolder``; also subsets such as Imagenette, scored over all 1000 outputs)
index folders      ``root/0/*.jpeg`` .. ``root/999/``: one folder per class, named by class index (ImageNetV2)
labels file        a flat folder of images and ``labels=FILE``, one of:
                   ``file_name class`` per line, class a WordNet id or an index (the common ``val.txt``);
                   one WordNet id per line, for the folder's files in sorted name order;
                   Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``, the first WordNet id of
                   each row is the class)
=================  ======================================================================================

Every regular file inside a class folder is an image to score (hidden files such as ``.DS_Store`` aside): a
file that turns out not to be an image is reported as failed when it is decoded, never silently dropped.
Samples are sorted by path, so ``limit=N`` takes a deterministic subset.
"""

import csv
import re
from pathlib import Path
from typing import NamedTuple

from ..errors import GhostnpError
from .labels import imagenet_classes

NUM_CLASSES = 1000
WNID_PATTERN = re.compile(r"^n\d{8}$")
INDEX_PATTERN = re.compile(r"^\d+$")

ACCEPTED_LAYOUTS = (
    "class folders named by WordNet id (root/n01440764/*.JPEG, the ImageFolder layout); "
    "class folders named by class index (root/0/ .. root/999/, the ImageNetV2 layout); "
    "or a flat folder of images with labels=FILE, where FILE has 'file_name class' lines (class a WordNet id "
    "or an index 0..999, like val.txt), one WordNet id per line for the files in sorted name order, or "
    "Kaggle's LOC_val_solution.csv"
)


class DatasetError(GhostnpError, ValueError):
    """A folder or labels file is not one of the accepted layouts, or names files or classes that do not exist."""


class LabelledImages(NamedTuple):
    """A labelled image set, sorted by path.

    Attributes
    ----------
    paths : list of pathlib.Path
        The image files, sorted.
    labels : list of int
        The class index (0..999) of each file.
    layout : str
        ``"wnid folders"``, ``"index folders"`` or ``"labels file"``.
    """

    paths: list
    labels: list
    layout: str


def find_labelled_images(root, labels=None, *, limit=None):
    """The (file, class) pairs of a labelled image set, in any of the layouts of this module.

    Parameters
    ----------
    root : str or os.PathLike
        A folder of class folders, or (with ``labels``) a flat folder of images.
    labels : str or os.PathLike, optional
        The labels file of a flat folder.
    limit : int, optional
        Keep the first ``limit`` samples in sorted order.

    Returns
    -------
    LabelledImages

    Raises
    ------
    DatasetError
        If ``root`` is missing or empty, matches none of the layouts, a class folder names an unknown class,
        or the labels file is unreadable, names a file that is not in ``root`` or an unknown class.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. Pass the folder of the labelled images.")
    if labels is not None:
        found = _flat_folder_with_labels_file(root, Path(labels))
    else:
        found = _class_folders(root)
    if not found.paths:
        raise DatasetError(f"{root} holds no images to score. Accepted layouts: {ACCEPTED_LAYOUTS}.")
    if limit is not None:
        if limit < 1:
            raise DatasetError(f"limit must be a positive number of images, got {limit}")
        found = LabelledImages(found.paths[:limit], found.labels[:limit], found.layout)
    return found


def _visible_entries(folder):
    """The entries of ``folder`` that are not hidden (``.DS_Store``, ``.ipynb_checkpoints``), sorted by name."""
    return sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")), key=lambda p: p.name)


def _class_folders(root):
    """Class folders named by WordNet id or by index; each holds that class's images (at any depth)."""
    entries = _visible_entries(root)
    folders = [entry for entry in entries if entry.is_dir()]
    if not entries:
        raise DatasetError(f"{root} is empty. Accepted layouts: {ACCEPTED_LAYOUTS}.")
    if not folders:
        raise DatasetError(
            f"{root} holds files but no class folders, and no labels file was given. "
            f"Pass labels=FILE (--labels FILE) for a flat folder. Accepted layouts: {ACCEPTED_LAYOUTS}."
        )
    names = [folder.name for folder in folders]
    if all(WNID_PATTERN.match(name) for name in names):
        by_wnid = _wnid_indices()
        unknown = [name for name in names if name not in by_wnid]
        if unknown:
            raise DatasetError(
                f"{root}: {len(unknown)} class folder(s) are not ImageNet-1k WordNet ids: {_some(unknown)}. "
                "Remove them, or check that the set is labelled with ImageNet-1k classes."
            )
        classes, layout = [by_wnid[name] for name in names], "wnid folders"
    elif all(INDEX_PATTERN.match(name) for name in names):
        out_of_range = [name for name in names if int(name) >= NUM_CLASSES]
        if out_of_range:
            raise DatasetError(
                f"{root}: class folder(s) {_some(out_of_range)} are not class indices 0..{NUM_CLASSES - 1}."
            )
        folders = sorted(folders, key=lambda folder: int(folder.name))  # 0, 1, 2, ..., 10, not 0, 1, 10, 100
        classes, layout = [int(folder.name) for folder in folders], "index folders"
    else:
        odd = [name for name in names if not (WNID_PATTERN.match(name) or INDEX_PATTERN.match(name))]
        raise DatasetError(
            f"{root}: the folder names ({_some(odd or names)}) are neither all WordNet ids nor all class "
            f"indices. Accepted layouts: {ACCEPTED_LAYOUTS}."
        )
    paths, labels = [], []
    for folder, index in zip(folders, classes):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))
        paths.extend(files)
        labels.extend([index] * len(files))
    return LabelledImages(paths, labels, layout)


def _hidden(path, folder):
    """True when ``path`` or a folder between it and ``folder`` is hidden (its name starts with a dot)."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _flat_folder_with_labels_file(root, labels_file):
    """Images in ``root`` labelled by ``labels_file`` in one of the three labels-file formats."""
    if not labels_file.is_file():
        raise DatasetError(f"labels file {labels_file} does not exist. Check the path.")
    try:
        text = labels_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read labels file {labels_file}: {error}. It must be a text file.") from error
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DatasetError(f"labels file {labels_file} is empty. Accepted layouts: {ACCEPTED_LAYOUTS}.")
    if lines[0].replace(" ", "").lower().startswith("imageid,predictionstring"):
        pairs = _kaggle_solution_rows(text, labels_file)
        return _match_files(root, labels_file, pairs, by_stem=True)
    fields = [line.split() for line in lines]
    if all(len(row) == 1 for row in fields):
        return _one_wnid_per_line(root, labels_file, [row[0] for row in fields])
    if all(len(row) == 2 for row in fields):
        pairs = [(name, _class_index(value, labels_file, number)) for number, (name, value) in enumerate(fields, 1)]
        return _match_files(root, labels_file, pairs, by_stem=False)
    raise DatasetError(
        f"labels file {labels_file} is in no format ghostnp reads (line 1: {lines[0][:80]!r}). "
        f"Accepted layouts: {ACCEPTED_LAYOUTS}."
    )


def _kaggle_solution_rows(text, labels_file):
    """(image id, class index) of each row of Kaggle's ``LOC_val_solution.csv``: the first WordNet id of the boxes."""
    pairs = []
    for number, row in enumerate(csv.reader(text.splitlines()[1:]), 2):
        if not row:
            continue
        if len(row) != 2 or not row[1].split():
            raise DatasetError(
                f"{labels_file}, line {number}: expected 'ImageId,PredictionString' with boxes "
                f"'wnid x_min y_min x_max y_max ...', got {','.join(row)[:80]!r}"
            )
        pairs.append((row[0].strip(), _class_index(row[1].split()[0], labels_file, number)))
    return pairs


def _one_wnid_per_line(root, labels_file, wnids):
    """One WordNet id per line, for the image files of ``root`` in sorted name order."""
    files = [entry for entry in _visible_entries(root) if entry.is_file()]
    if len(files) != len(wnids):
        raise DatasetError(
            f"labels file {labels_file} has one WordNet id per line, for the files of {root} in sorted order, but "
            f"it has {len(wnids)} lines and the folder {len(files)} files. Use a 'file_name class' labels file "
            "for a subset of the folder."
        )
    labels = [_class_index(wnid, labels_file, number, wnid_only=True) for number, wnid in enumerate(wnids, 1)]
    return LabelledImages(files, labels, "labels file")


def _match_files(root, labels_file, pairs, *, by_stem):
    """The files of ``root`` named in ``pairs`` (by full name, or by name without suffix for Kaggle's ids)."""
    if by_stem:
        files = {entry.stem: entry for entry in _visible_entries(root) if entry.is_file()}
    else:
        files = {entry.name: entry for entry in _visible_entries(root) if entry.is_file()}
    missing = [name for name, _ in pairs if name not in files]
    if missing:
        raise DatasetError(
            f"labels file {labels_file} names {len(missing)} file(s) that are not in {root}: {_some(missing)}. "
            "Check that the labels file belongs to this folder."
        )
    ordered = sorted((files[name], index) for name, index in pairs)
    return LabelledImages([path for path, _ in ordered], [index for _, index in ordered], "labels file")


def _class_index(value, labels_file, line, *, wnid_only=False):
    """The class index of a WordNet id, or of an index written as a number; one clear error otherwise."""
    if WNID_PATTERN.match(value):
        by_wnid = _wnid_indices()
        if value not in by_wnid:
            raise DatasetError(
                f"{labels_file}, line {line}: {value} is not an ImageNet-1k WordNet id. "
                "Check that the labels belong to ImageNet-1k (ghostnp.images.labels lists the 1000 classes)."
            )
        return by_wnid[value]
    if not wnid_only and INDEX_PATTERN.match(value) and int(value) < NUM_CLASSES:
        return int(value)
    expected = "a WordNet id (n01440764)" + ("" if wnid_only else f" or a class index 0..{NUM_CLASSES - 1}")
    note = (
        " An index per line is ambiguous (ILSVRC's own ground-truth file numbers classes 1..1000 in another "
        "order): give 'file_name class' lines instead."
        if wnid_only and INDEX_PATTERN.match(value)
        else ""
    )
    raise DatasetError(f"{labels_file}, line {line}: {value!r} is not {expected}.{note}")


def _wnid_indices():
    """WordNet id -> class index, for the 1000 ImageNet-1k classes."""
    return {c.wnid: c.index for c in imagenet_classes()}


def _some(names, shown=5):
    """``'a', 'b', 'c' and 4 more``: a few names to quote in a message."""
    quoted = ", ".join(repr(str(name)) for name in names[:shown])
    return quoted + (f" and {len(names) - shown} more" if len(names) > shown else "")
