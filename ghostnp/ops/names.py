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

# Fused ops: each is a composition of the ops above (``ghostnp.ops.fused``), which the NumPy table runs as
# it is and a fast table may run in one pass. Every table provides them too.
FUSED_OP_NAMES = (
    "ghost_module",
    "dfc_gate",
    "squeeze_excite",
)
