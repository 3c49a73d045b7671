"""The names of the 1000 ImageNet-1k classes, in the order the pretrained classifiers output them.

The list ships as ``ghostnp/data/imagenet1k_classes.tsv`` (columns: index, WordNet id, name), where each
name is the synset's WordNet lemmas joined by ", ", most common first: ``281 n02123045 tabby, tabby cat``.
"""

from functools import cache
from importlib import resources
from typing import NamedTuple

CLASSES_FILE_NAME = "imagenet1k_classes.tsv"


class ClassName(NamedTuple):
    """One ImageNet-1k class.

    Attributes
    ----------
    index : int
        Position in the classifier's output, 0..999.
    wnid : str
        WordNet synset id, e.g. ``"n02123045"`` (also the folder name in the ImageNet training set).
    name : str
        The synset's lemmas, most common first, e.g. ``"tabby, tabby cat"``.
    """

    index: int
    wnid: str
    name: str

    @property
    def short_name(self) -> str:
        """The first lemma (``"tabby"``). Not unique: 134 and 517 are both ``"crane"`` (the bird, the machine)."""
        return self.name.split(", ")[0]


@cache
def _read_classes() -> tuple[ClassName, ...]:
    """Parse the shipped tsv once per process."""
    text = resources.files("ghostnp").joinpath("data", CLASSES_FILE_NAME).read_text(encoding="utf-8")
    classes = []
    for row in text.splitlines()[1:]:  # line 0 is the header: index, wnid, name
        index, wnid, name = row.split("\t")
        classes.append(ClassName(int(index), wnid, name))
    return tuple(classes)


def imagenet_classes() -> list[ClassName]:
    """The 1000 ImageNet-1k classes in classifier-output order.

    Returns
    -------
    list of ClassName
        ``imagenet_classes()[i]`` is the class of logit ``i``; a new list on each call (the parsed file is
        cached).

    Examples
    --------
    >>> imagenet_classes()[281]
    ClassName(index=281, wnid='n02123045', name='tabby, tabby cat')
    """
    return list(_read_classes())
