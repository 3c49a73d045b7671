"""The pretrained-weights registry: tags, sources, preprocessing, and name lookup."""

import ast
import dataclasses
import math
import re
import sys
from pathlib import Path

import pytest

import ghostnp
from ghostnp.weights.pretrained import IMAGENET_MEAN, IMAGENET_STD, get_pretrained_config, list_pretrained

PAPER_TOP1 = {"ghostnetv2_100": 75.3, "ghostnetv2_130": 76.9, "ghostnetv2_160": 77.8, "ghostnet_100": 73.9}
RELEASE = "https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/"


def test_list_pretrained_names_the_four_in1k_weights_sorted():
    widths = ["ghostnetv2_100.in1k", "ghostnetv2_130.in1k", "ghostnetv2_160.in1k"]
    assert list_pretrained() == ["ghostnet_100.in1k", *widths]


@pytest.mark.parametrize("tag", list_pretrained())
def test_config_fits_its_architecture(tag):
    config = get_pretrained_config(tag)
    assert config.tag == tag == f"{config.architecture}.in1k"
    assert config.architecture in ghostnp.list_models()
    assert ghostnp.expected_shapes(config.architecture)["classifier.weight"][0] == config.num_classes == 1000
    assert config.paper_top1 == PAPER_TOP1[config.architecture]


@pytest.mark.parametrize("tag", list_pretrained())
def test_config_carries_timm_evaluation_preprocessing(tag):
    config = get_pretrained_config(tag)
    assert config.input_size == (3, 224, 224)
    assert config.crop_pct == 0.875 and math.floor(224 / config.crop_pct) == 256
    assert config.interpolation == "bicubic"
    assert config.mean == IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert config.std == IMAGENET_STD == (0.229, 0.224, 0.225)
    assert config.license == "Apache-2.0"
    assert "authors" in config.origin and f"timm/{tag}" in config.origin


@pytest.mark.parametrize(("width", "release_code"), [("100", "10"), ("130", "13"), ("160", "16")])
def test_ghostnetv2_sources_are_the_official_release_then_timm_copy(width, release_code):
    config = get_pretrained_config(f"ghostnetv2_{width}")
    assert config.urls == (
        f"{RELEASE}ck_ghostnetv2_{release_code}.pth.tar",
        f"https://huggingface.co/timm/ghostnetv2_{width}.in1k/resolve/main/model.safetensors",
    )
    file_names = [source.file_name for source in config.sources]
    assert file_names == [f"ck_ghostnetv2_{release_code}.pth.tar", "model.safetensors"]
    assert all(source.sha256 is None for source in config.sources)  # none is published


def test_ghostnet_v1_source_is_the_timm_copy_with_its_known_sha256():
    (source,) = get_pretrained_config("ghostnet_100").sources
    assert source.url == "https://huggingface.co/timm/ghostnet_100.in1k/resolve/main/model.safetensors"
    assert re.fullmatch("[0-9a-f]{64}", source.sha256)
    assert source.sha256.startswith("8efbcf55") and source.sha256.endswith("cc230e2e2")


@pytest.mark.parametrize("tag", list_pretrained())
def test_source_file_names_are_distinct_within_a_tag(tag):
    names = [source.file_name for source in get_pretrained_config(tag).sources]
    assert len(set(names)) == len(names)  # each source gets its own cache path


def test_architecture_name_means_its_in1k_weights():
    assert get_pretrained_config("ghostnetv2_130") is get_pretrained_config("ghostnetv2_130.in1k")


@pytest.mark.parametrize("name", ["ghostnetv2_200", "ghostnetv2_100.in22k", "resnet50", ""])
def test_unknown_name_lists_the_known_tags(name):
    with pytest.raises(ValueError, match=re.escape(repr(name))) as raised:
        get_pretrained_config(name)
    assert all(tag in str(raised.value) for tag in list_pretrained())


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_pretrained_config("ghostnetv2_100").crop_pct = 1.0


def test_registry_module_imports_the_standard_library_only():
    source = Path(sys.modules["ghostnp.weights.pretrained"].__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the registry must not depend on the rest of ghostnp"
            imported.add(node.module.split(".")[0])
    assert imported and imported <= sys.stdlib_module_names
