"""The pretrained-weights registry: which trained weights exist, where they come from, how to feed them.

In the style of timm's pretrained configs, weights are described apart from the architecture: a tag
``"<architecture>.<training>"`` (``"ghostnetv2_100.in1k"``) names one set of trained weights, its download
sources in the order they are tried, and the evaluation preprocessing those weights were measured with.

The evaluation preprocessing is the same for every entry (timm's released configs): ``.convert('RGB')``,
resize the shorter side to ``floor(224 / crop_pct) = 256`` with bicubic interpolation, centre crop 224 x 224,
scale to [0, 1], normalise with the ImageNet mean and std, NCHW float32.

This module is imported by ``import ghostnp``: it uses the standard library only.
"""

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_OFFICIAL_RELEASE = "https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2"
_HUGGING_FACE = "https://huggingface.co/timm"


@dataclass(frozen=True)
class WeightsSource:
    """One downloadable file holding a set of weights.

    Attributes
    ----------
    url : str
        Where the file is published.
    sha256 : str or None
        The file's full sha256 in hex, or None where the publisher gives none. Without one, ghostnp records
        the hash it computes at download time and checks the file against that record on every later use.
    """

    url: str
    sha256: str | None = None

    @property
    def file_name(self) -> str:
        """The last part of the URL (``"ck_ghostnetv2_10.pth.tar"``, ``"model.safetensors"``)."""
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PretrainedConfig:
    """One set of trained weights and the preprocessing it expects.

    Attributes
    ----------
    tag : str
        ``"<architecture>.<training>"``, e.g. ``"ghostnetv2_100.in1k"``.
    architecture : str
        The model name accepted by ``ghostnp.create_model``.
    sources : tuple of WeightsSource
        The files holding these weights, in the order they are tried: the authors' release first, then
        timm's re-hosted copy. Any one of them is enough.
    input_size : tuple of int
        (C, H, W) the weights were evaluated at.
    crop_pct : float
        Centre-crop fraction: the shorter side is resized to ``floor(H / crop_pct)`` before cropping H x W.
    interpolation : str
        Resize filter (``"bicubic"``).
    mean, std : tuple of float
        Per-channel normalisation of [0, 1] RGB pixels.
    num_classes : int
        Classifier outputs (ImageNet-1k).
    license : str
        The licence the weights are published under.
    origin : str
        Who trained the weights and where they are published.
    paper_top1 : float
        ImageNet-1k top-1 accuracy (%) reported in the paper.
    """

    tag: str
    architecture: str
    sources: tuple[WeightsSource, ...]
    paper_top1: float
    origin: str
    license: str = "Apache-2.0"
    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_classes: int = 1000

    @property
    def urls(self) -> tuple[str, ...]:
        """The source URLs in the order they are tried."""
        return tuple(source.url for source in self.sources)


def _ghostnetv2(width_code: str, release_code: str, paper_top1: float) -> PretrainedConfig:
    """The registry entry of GhostNetV2 at one width (``"100"`` with release file ``ck_ghostnetv2_10``)."""
    architecture = f"ghostnetv2_{width_code}"
    tag = f"{architecture}.in1k"
    return PretrainedConfig(
        tag=tag,
        architecture=architecture,
        sources=(
            WeightsSource(f"{_OFFICIAL_RELEASE}/ck_ghostnetv2_{release_code}.pth.tar"),
            WeightsSource(f"{_HUGGING_FACE}/{tag}/resolve/main/model.safetensors"),
        ),
        paper_top1=paper_top1,
        origin=(
            "Trained on ImageNet-1k by the paper's authors; released in huawei-noah/Efficient-AI-Backbones "
            f"(release GhostNetV2) and re-hosted by timm as timm/{tag} (same tensors, model card: apache-2.0)."
        ),
    )


_CONFIGS = {
    config.tag: config
    for config in (
        _ghostnetv2("100", "10", 75.3),
        _ghostnetv2("130", "13", 76.9),
        _ghostnetv2("160", "16", 77.8),
        PretrainedConfig(
            tag="ghostnet_100.in1k",
            architecture="ghostnet_100",
            sources=(
                WeightsSource(
                    f"{_HUGGING_FACE}/ghostnet_100.in1k/resolve/main/model.safetensors",
                    sha256="8efbcf55d97872c828768b096d4ebebc51f8b7e29623fd3b3933d78cc230e2e2",
                ),
            ),
            paper_top1=73.9,
            origin=(
                "GhostNet (V1) trained on ImageNet-1k by the paper's authors (huawei-noah/CV-backbones); "
                "re-hosted by timm as timm/ghostnet_100.in1k (model card: apache-2.0)."
            ),
        ),
    )
}


def list_pretrained() -> list[str]:
    """The tags of every registered set of weights, sorted: ``["ghostnet_100.in1k", "ghostnetv2_100.in1k", ...]``."""
    return sorted(_CONFIGS)


def get_pretrained_config(name: str) -> PretrainedConfig:
    """The registry entry for a tag (``"ghostnetv2_100.in1k"``) or an architecture (``"ghostnetv2_100"``).

    Parameters
    ----------
    name : str
        A full tag, or an architecture name meaning its ``.in1k`` weights.

    Returns
    -------
    PretrainedConfig

    Raises
    ------
    ValueError
        If no weights are registered under that name; the message lists the known tags.
    """
    tag = name if "." in name else f"{name}.in1k"
    if tag not in _CONFIGS:
        raise ValueError(
            f"no pretrained weights are registered as {name!r}; "
            f"known tags: {', '.join(list_pretrained())} (an architecture name alone means its .in1k weights)"
        )
    return _CONFIGS[tag]
