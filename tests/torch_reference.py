"""GhostNetV2 and GhostNet (V1) in PyTorch: the ground truth that ghostnp is checked against.

Written from the architecture description (the authors' ``ghostnetv2_torch.py`` and timm's ``ghostnet.py``
compute the same thing), with their module names, so that ``state_dict()`` has exactly the keys, order,
shapes and dtypes of ``tests/data/keys_*.tsv``. Tests only: torch is never imported by ghostnp itself.

Public functions: :func:`build_torch_model`, :func:`build_torch_model_width`, :func:`randomize_batchnorm`,
:func:`state_dict_numpy`, :func:`torch_forward`. The pieces (:class:`GhostModule`, :class:`SqueezeExcite`,
:class:`GhostBottleneck`) are public too, for block tests, and :class:`TorchFromArchitecture` builds the
reference of any ghostnp architecture (the tiny test network). ``GhostNet.dropout_keep`` fixes the dropout
mask of a training forward, so that a training step can be compared with ghostnp's.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# One row per Ghost bottleneck, one list per stage: kernel size k, expansion (mid) width, output width c,
# squeeze-excite ratio (0 = no SE), stride.
#   k, exp,   c,  SE,  s
BLOCK_CONFIG = [
    [(3, 16, 16, 0, 1)],
    [(3, 48, 24, 0, 2)],
    [(3, 72, 24, 0, 1)],
    [(5, 72, 40, 0.25, 2)],
    [(5, 120, 40, 0.25, 1)],
    [(3, 240, 80, 0, 2)],
    [(3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)],
    [(5, 672, 160, 0.25, 2)],
    [(5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)],
]

# name -> (width multiplier, GhostNetV2?)  (timm's model names)
MODELS = {
    "ghostnetv2_100": (1.0, True),
    "ghostnetv2_130": (1.3, True),
    "ghostnetv2_160": (1.6, True),
    "ghostnet_100": (1.0, False),
}

HEAD_CHS = 1280  # conv_head output width, not scaled by the width multiplier


def make_divisible(v, divisor=4):
    """Round a channel count to a multiple of ``divisor``, never more than 10 % below ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def hard_sigmoid(x):
    """``relu6(x + 3) / 6``: the squeeze-excite gate."""
    return F.relu6(x + 3.0) / 6.0


def conv_bn(in_chs, out_chs, kernel_size, stride=1, padding=0, groups=1, relu=False):
    """Conv (no bias) -> BatchNorm [-> ReLU] as an ``nn.Sequential`` (keys ``.0.weight``, ``.1.*``)."""
    layers = [
        nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_chs),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GhostModule(nn.Module):
    """Ghost module: half the channels from a 1x1 conv, the other half from a cheap depthwise 3x3 on them.

    mode 'original': ``out = concat(x1, dw3x3(x1))[:, :out_chs]`` with ``x1 = conv1x1(x)``.
    mode 'attn': the same, times the DFC attention gate computed from the module input ``x``
    (``short_conv``: 2x2 avg pool, 1x1 conv, (1, 5) and (5, 1) depthwise convs, sigmoid, nearest upsample).
    """

    def __init__(self, in_chs, out_chs, relu=True, mode="original"):
        super().__init__()
        if mode not in ("original", "attn"):
            raise ValueError(f"GhostModule mode must be 'original' or 'attn', got {mode!r}")
        self.out_chs = out_chs
        init_chs = math.ceil(out_chs / 2)
        self.primary_conv = conv_bn(in_chs, init_chs, 1, relu=relu)
        self.cheap_operation = conv_bn(init_chs, init_chs, 3, padding=1, groups=init_chs, relu=relu)
        self.short_conv = None
        if mode == "attn":
            self.short_conv = nn.Sequential(
                *conv_bn(in_chs, out_chs, 1),
                *conv_bn(out_chs, out_chs, (1, 5), padding=(0, 2), groups=out_chs),  # the horizontal "FC"
                *conv_bn(out_chs, out_chs, (5, 1), padding=(2, 0), groups=out_chs),  # the vertical "FC"
            )

    def dfc_gate(self, x):
        """The DFC attention map before upsampling: (N, C_in, H, W) -> (N, out_chs, H // 2, W // 2)."""
        return torch.sigmoid(self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2)))

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)[:, : self.out_chs]
        if self.short_conv is None:
            return out
        gate = F.interpolate(self.dfc_gate(x), size=(out.shape[-2], out.shape[-1]), mode="nearest")
        return out * gate


class SqueezeExcite(nn.Module):
    """``x * hard_sigmoid(conv_expand(relu(conv_reduce(mean_hw(x)))))``, the 1x1 convs with bias."""

    def __init__(self, in_chs, se_ratio=0.25):
        super().__init__()
        reduced_chs = make_divisible(in_chs * se_ratio)
        self.conv_reduce = nn.Conv2d(in_chs, reduced_chs, 1, bias=True)
        self.conv_expand = nn.Conv2d(reduced_chs, in_chs, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        return x * hard_sigmoid(self.conv_expand(F.relu(self.conv_reduce(s))))


class GhostBottleneck(nn.Module):
    """ghost1 (ReLU) -> [depthwise k x k stride s + BN] -> [SE] -> ghost2 (no act), plus the shortcut."""

    def __init__(self, in_chs, mid_chs, out_chs, dw_kernel_size=3, stride=1, se_ratio=0.0, mode="original"):
        super().__init__()
        padding = (dw_kernel_size - 1) // 2
        self.ghost1 = GhostModule(in_chs, mid_chs, relu=True, mode=mode)
        self.conv_dw = self.bn_dw = self.se = None
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid_chs, mid_chs, dw_kernel_size, stride, padding, groups=mid_chs, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid_chs)
        if se_ratio > 0:
            self.se = SqueezeExcite(mid_chs, se_ratio)
        self.ghost2 = GhostModule(mid_chs, out_chs, relu=False, mode="original")
        if in_chs == out_chs and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                *conv_bn(in_chs, in_chs, dw_kernel_size, stride, padding, groups=in_chs),
                *conv_bn(in_chs, out_chs, 1),
            )

    def forward(self, x):
        y = self.ghost1(x)
        if self.conv_dw is not None:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


class ConvBnAct(nn.Module):
    """1x1 conv -> BN -> ReLU (``blocks.9.0``: ``conv``, ``bn1``)."""

    def __init__(self, in_chs, out_chs):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)

    def forward(self, x):
        return F.relu(self.bn1(self.conv(x)))


class GhostNet(nn.Module):
    """The whole network: stem, 9 stages of Ghost bottlenecks, 1x1 conv, pooled head, classifier.

    ``v2=True`` puts the DFC attention in ``ghost1`` of every bottleneck from flat index 2 on (GhostNetV2);
    ``v2=False`` is GhostNet V1.
    """

    def __init__(self, width=1.0, v2=True, num_classes=1000, dropout=0.2):
        super().__init__()
        self.dropout = dropout
        self.dropout_keep = None  # a fixed mask (1 kept, 0 dropped) for training steps compared with ghostnp
        in_chs = make_divisible(16 * width)
        self.conv_stem = nn.Conv2d(3, in_chs, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_chs)
        stages, layer_id = [], 0
        for stage in BLOCK_CONFIG:
            blocks = []
            for k, exp, c, se_ratio, stride in stage:
                out_chs, mid_chs = make_divisible(c * width), make_divisible(exp * width)
                mode = "attn" if v2 and layer_id > 1 else "original"
                blocks.append(GhostBottleneck(in_chs, mid_chs, out_chs, k, stride, se_ratio, mode))
                in_chs, layer_id = out_chs, layer_id + 1
            stages.append(nn.Sequential(*blocks))
        features_chs = make_divisible(960 * width)
        stages.append(nn.Sequential(ConvBnAct(in_chs, features_chs)))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(features_chs, HEAD_CHS, 1, bias=True)
        self.classifier = nn.Linear(HEAD_CHS, num_classes)

    def forward_features(self, x):
        """(N, 3, H, W) -> (N, make_divisible(960 w), H / 32, W / 32) (sizes rounded as the convs do)."""
        return self.blocks(F.relu(self.bn1(self.conv_stem(x))))

    def forward_head(self, x):
        """(N, C, h, w) -> logits (N, num_classes)."""
        x = F.relu(self.conv_head(x.mean((2, 3), keepdim=True))).flatten(1)  # (N, 1280)
        if self.training and self.dropout_keep is not None:  # F.dropout's computation with a given mask
            return self.classifier(x * (self.dropout_keep / (1 - self.dropout)))
        return self.classifier(F.dropout(x, self.dropout, self.training))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class TorchFromArchitecture(GhostNet):
    """The reference network for any ghostnp architecture (e.g. ``ghostnetv2_tiny``), with the same module names."""

    def __init__(self, arch, dropout=0.0):
        nn.Module.__init__(self)
        self.dropout, self.dropout_keep = dropout, None
        self.conv_stem = nn.Conv2d(3, arch.stem_chs, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(arch.stem_chs)
        stages = {}
        for spec in arch.blocks:
            se_ratio = spec.se_chs / spec.mid_chs if spec.se_chs else 0.0
            block = GhostBottleneck(
                spec.in_chs, spec.mid_chs, spec.out_chs, spec.dw_kernel_size, spec.stride, se_ratio, spec.mode
            )
            stages.setdefault(spec.name.split(".")[1], []).append(block)
        final = nn.Sequential(ConvBnAct(arch.blocks[-1].out_chs, arch.final_chs))
        self.blocks = nn.Sequential(*(nn.Sequential(*stage) for stage in stages.values()), final)
        self.conv_head = nn.Conv2d(arch.final_chs, arch.head_chs, 1, bias=True)
        self.classifier = nn.Linear(arch.head_chs, arch.num_classes)


def build_torch_model_width(width, v2=True, num_classes=1000):
    """A GhostNetV2 (``v2=True``) or GhostNet V1 of any width multiplier, in eval mode, float32."""
    return GhostNet(width, v2, num_classes).eval()


def build_torch_model(name, num_classes=1000):
    """One of the four named models (``MODELS``), in eval mode, float32, torch's default initialisation."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    width, v2 = MODELS[name]
    return build_torch_model_width(width, v2, num_classes)


def randomize_batchnorm(model, seed):
    """Give every BatchNorm non-trivial statistics and affine parameters, in place (a fresh BN is the identity).

    running_mean ~ N(0, 0.5), running_var ~ U(0.25, 2.25), weight ~ U(0.5, 1.5), bias ~ N(0, 0.25), and
    num_batches_tracked a small positive integer, drawn from ``seed``; returns ``model``.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(0.5 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.25 + 2 * torch.rand(c, generator=generator))
                module.weight.copy_(0.5 + torch.rand(c, generator=generator))
                module.bias.copy_(0.25 * torch.randn(c, generator=generator))
                module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=generator)))
    return model


def state_dict_numpy(model, dtype=np.float32):
    """The state_dict as a flat ``{key: ndarray}``: floating tensors in ``dtype``, ``num_batches_tracked`` int64."""
    return {
        key: value.detach().cpu().numpy().astype(dtype if value.is_floating_point() else value.numpy().dtype)
        for key, value in model.state_dict().items()
    }


def torch_forward(module, x):
    """Run ``module`` in eval mode on a NumPy batch, in the batch's dtype; returns a NumPy array.

    The module is cast in place to float64 or float32 to match ``x``.
    """
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    module.to(dtype).eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()
