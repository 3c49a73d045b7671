"""``summary``: a per-layer table of output shapes, parameters and multiply-adds.

Multiply-adds (MACs) count convolutions and the classifier, per image, with BatchNorm folded into the
convolutions and pooling, activations and gating not counted: the convention of the GhostNetV2 paper,
whose "167M FLOPs" for GhostNetV2 1.0x is exactly this count at 224 x 224.
"""

from dataclasses import dataclass

import numpy as np

from .model import GhostNet
from .params import bn_to_conv_key, is_trainable, param_shapes, zero_params
from .registry import get_architecture


@dataclass(frozen=True)
class LayerRow:
    name: str  # the conv's (or linear's) state_dict prefix
    output_shape: tuple  # (C, H, W) or (features,) for one image
    params: int  # the layer's weights and biases, with those of the BatchNorm after it
    macs: int  # multiply-adds for one image


@dataclass(frozen=True)
class Summary:
    model: str
    input_size: tuple  # (H, W)
    rows: tuple

    @property
    def total_params(self):
        return sum(row.params for row in self.rows)

    @property
    def total_macs(self):
        return sum(row.macs for row in self.rows)

    def __str__(self):
        width = max(len(row.name) for row in self.rows)
        header = f"{'layer':<{width}}  {'output shape':>16}  {'params':>11}  {'MACs':>13}"
        lines = [f"{self.model} at {self.input_size[0]} x {self.input_size[1]}", header, "-" * len(header)]
        for row in self.rows:
            shape = " x ".join(map(str, row.output_shape))
            lines.append(f"{row.name:<{width}}  {shape:>16}  {row.params:>11,}  {row.macs:>13,}")
        lines.append("-" * len(header))
        lines.append(f"{'total':<{width}}  {'':>16}  {self.total_params:>11,}  {self.total_macs:>13,}")
        lines.append(f"= {self.total_params / 1e6:.2f} M parameters, {self.total_macs / 1e6:.1f} M multiply-adds")
        return "\n".join(lines)


def summary(name, input_size=224):
    """The per-layer table of a model at an input size (an int for square inputs, or (H, W)).

    Runs the NumPy model once on a zero image of one sample to read every layer's output shape.
    ``print(summary("ghostnetv2_100"))`` prints the table; ``.total_params`` and ``.total_macs`` are ints.
    """
    h, w = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    arch = get_architecture(name)
    shapes = param_shapes(arch)
    model = GhostNet(arch, zero_params(arch), backend="numpy")
    _, trace = model.forward_intermediates(np.zeros((1, 3, h, w), np.float32))

    layer_shapes = {key[: -len(".weight")]: shape for key, shape in shapes.items() if key.endswith(".weight")}
    layers = [name for name in trace if name in layer_shapes and len(layer_shapes[name]) in (2, 4)]
    params = dict.fromkeys(layers, 0)
    for key, shape in shapes.items():
        if not is_trainable(key):
            continue
        prefix = key.rpartition(".")[0]
        owner = prefix if prefix in params else bn_to_conv_key(prefix)
        params[owner] += int(np.prod(shape))

    rows = []
    for layer in layers:
        out_shape = trace[layer].shape[1:]
        weight = layer_shapes[layer]
        per_output = int(np.prod(weight[1:]))  # C_in / groups * kH * kW, or in_features
        rows.append(LayerRow(layer, tuple(out_shape), params[layer], int(np.prod(out_shape)) * per_output))
    return Summary(name, (h, w), tuple(rows))
