"""The architecture as data: the GhostNet config table and the builder that turns a width into block specs.

Nothing here computes on images. ``build_architecture(width)`` returns an :class:`Architecture` whose
``blocks`` list says, for every Ghost bottleneck, its state_dict prefix, channel counts, kernel, stride,
squeeze-excite width and Ghost-module mode. The forward pass, the parameter shapes and the summary all
read this one description.
"""

from dataclasses import dataclass

# The GhostNet / GhostNetV2 stages (paper Table 1): kernel, expansion, out channels, SE ratio, stride.
#   k, exp,   c,  se,  s
STAGES = (
    ((3, 16, 16, 0.0, 1),),
    ((3, 48, 24, 0.0, 2),),
    ((3, 72, 24, 0.0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0.0, 2),),
    ((3, 200, 80, 0.0, 1), (3, 184, 80, 0.0, 1), (3, 184, 80, 0.0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1)),
)
STEM_CHS = 16
FINAL_CONV_CHS = 960  # blocks.9.0, scaled by the width
HEAD_CHS = 1280  # conv_head, not scaled by the width
NUM_CLASSES = 1000
DROPOUT_RATE = 0.2  # training only; inference ignores it
MIN_INPUT_SIZE = 33  # the last stage must still be >= 2 x 2 for the DFC average pool
FIRST_ATTN_BLOCK = 2  # GhostNetV2: flat blocks 0 and 1 are 'original', 2..15 use DFC attention


def make_divisible(v, divisor=4, min_value=None):
    """Round a channel count to a multiple of ``divisor`` (timm's ``make_divisible`` with round_limit 0.9).

    ``max(min_value, int(v + divisor / 2) // divisor * divisor)``, plus one divisor if that lost over 10 %.
    """
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@dataclass(frozen=True)
class BlockSpec:
    """One Ghost bottleneck: ``name`` is its state_dict prefix, e.g. ``"blocks.6.3"``."""

    name: str
    index: int  # flat index 0..15
    in_chs: int
    mid_chs: int
    out_chs: int
    dw_kernel_size: int
    stride: int
    se_chs: int  # 0: no squeeze-excite
    mode: str  # ghost1's mode: "original" or "attn" (with the DFC attention branch)

    @property
    def has_conv_shortcut(self):
        return not (self.in_chs == self.out_chs and self.stride == 1)


@dataclass(frozen=True)
class Architecture:
    """A whole network: stem width, the bottlenecks, the final 1x1 conv and the head."""

    name: str
    width: float
    version: int  # 1 = GhostNet, 2 = GhostNetV2
    stem_chs: int
    blocks: tuple
    final_conv: str  # state_dict prefix of the 1x1 conv after the last stage: "blocks.9.0"
    final_chs: int
    head_chs: int = HEAD_CHS
    num_classes: int = NUM_CLASSES


def build_architecture(
    width=1.0,
    version=2,
    num_classes=NUM_CLASSES,
    *,
    stages=STAGES,
    final_conv_chs=FINAL_CONV_CHS,
    head_chs=HEAD_CHS,
    name=None,
):
    """The block specs of GhostNet (``version=1``) or GhostNetV2 (``version=2``) at a width multiplier.

    ``stages``, ``final_conv_chs`` and ``head_chs`` may be replaced (``stages`` in the row format of
    :data:`STAGES`) to build small test networks.
    """
    if version not in (1, 2):
        raise ValueError(f"version must be 1 (GhostNet) or 2 (GhostNetV2), got {version!r}")
    if not width > 0:
        raise ValueError(f"width must be a positive multiplier such as 1.0, 1.3 or 1.6, got {width!r}")
    stem_chs = make_divisible(STEM_CHS * width)
    blocks, in_chs, flat = [], stem_chs, 0
    for stage_index, stage in enumerate(stages):
        for block_index, (k, exp, c, se_ratio, s) in enumerate(stage):
            out_chs = make_divisible(c * width)
            mid_chs = make_divisible(exp * width)
            se_chs = make_divisible(mid_chs * se_ratio) if se_ratio > 0 else 0
            mode = "attn" if version == 2 and flat >= FIRST_ATTN_BLOCK else "original"
            blocks.append(
                BlockSpec(f"blocks.{stage_index}.{block_index}", flat, in_chs, mid_chs, out_chs, k, s, se_chs, mode)
            )
            in_chs, flat = out_chs, flat + 1
    final_conv = f"blocks.{len(stages)}.0"
    final_chs = make_divisible(final_conv_chs * width)
    if name is None:
        name = f"ghostnet{'v2' if version == 2 else ''}_{round(width * 100)}"
    return Architecture(name, width, version, stem_chs, tuple(blocks), final_conv, final_chs, head_chs, num_classes)
