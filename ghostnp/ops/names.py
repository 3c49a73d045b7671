"""The op names every table provides: the contract between the model code and a backend."""

OP_NAMES = (
    "conv2d",
    "batch_norm",
    "relu",
    "sigmoid",
    "hard_sigmoid",
    "avg_pool_2x2",
    "global_avg_pool",
    "upsample_nearest",
    "linear",
    "add",
    "multiply",
    "concat_channels",
    "slice_channels",
    "flatten",
    "dropout",
)
