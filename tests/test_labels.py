"""ghostnp.images.labels: the shipped ImageNet-1k class list."""

import re

from ghostnp.images.labels import ClassName, imagenet_classes


def test_thousand_classes_in_classifier_order():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert [c.index for c in classes] == list(range(1000))
    assert all(isinstance(c, ClassName) for c in classes)


def test_known_classes():
    classes = imagenet_classes()
    assert classes[0] == ClassName(0, "n01440764", "tench, Tinca tinca")
    assert classes[281] == ClassName(281, "n02123045", "tabby, tabby cat")
    assert classes[999] == ClassName(999, "n15075141", "toilet tissue, toilet paper, bathroom tissue")


def test_wordnet_ids_are_unique_and_well_formed():
    wnids = [c.wnid for c in imagenet_classes()]
    assert len(set(wnids)) == 1000
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids)
    assert wnids == sorted(wnids)  # the classifier's order is the sorted order of the training folders


def test_names_are_readable_lemmas():
    for c in imagenet_classes():
        assert c.name == c.name.strip() and c.name, c
        assert "\t" not in c.name and "_" not in c.name, c  # WordNet's "tabby_cat" spelled "tabby cat"


def test_short_name_is_the_first_lemma():
    classes = imagenet_classes()
    assert classes[281].short_name == "tabby"
    assert classes[0].short_name == "tench"
    assert classes[134].short_name == classes[517].short_name == "crane"  # documented: not unique


def test_each_call_returns_a_fresh_list():
    first = imagenet_classes()
    first.clear()
    assert len(imagenet_classes()) == 1000
