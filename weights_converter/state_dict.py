"""From whatever a checkpoint holds to a clean flat ``{key: float32 array}`` state_dict.

- **Find** the weights: a bare state_dict (the official release), or the first of ``WRAPPER_KEYS`` in a
  training checkpoint (timm's train script writes 'state_dict', 'state_dict_ema', 'optimizer', 'args', ...).
  EMA weights come first because they are the ones evaluated, as in timm's ``load_checkpoint``.
- **Clean** the keys: strip ``PREFIXES`` ('module.' from DataParallel/DDP, '_orig_mod.' from torch.compile)
  and drop ``IGNORED_NAMES`` (BatchNorm's counter, and the profiler buffers left in the official files).
- **Check** the values: floating point, converted to float32, all finite, running variances >= 0.
Problems of one kind are reported together, so one run shows everything that is wrong.
"""

from __future__ import annotations

import numpy as np

from .errors import CheckpointError
from .pickle_machine import Record
from .tensors import TensorRef

WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")
PREFIXES = ("module.", "_orig_mod.")
IGNORED_NAMES = ("num_batches_tracked", "total_ops", "total_params")
TOP_LEVEL = "(top level)"
SHOWN = 8  # how many keys an error message lists before "and N more"


def _is_tensor(value) -> bool:
    return isinstance(value, (TensorRef, np.ndarray))


def _is_state_dict(value) -> bool:
    return (
        type(value) is dict
        and bool(value)
        and all(type(key) is str and _is_tensor(item) for key, item in value.items())
    )


def _describe(value) -> str:
    if isinstance(value, Record):
        return f"a pickled {value.class_name} object"
    if type(value) is dict:
        return f"a dict with keys {_listing([repr(key)[:40] for key in value])}"
    return f"a {type(value).__name__}"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def find_weights(tree, source: str) -> tuple[dict, str, list[str]]:
    """Find the state_dict inside a checkpoint.

    Parameters
    ----------
    tree : object
        What the file holds: a dict of tensors (``TensorRef`` or ndarray), or a dict wrapping one.
    source : str
        The file name for messages.

    Returns
    -------
    weights : dict of str to TensorRef or ndarray
    picked : str
        ``TOP_LEVEL`` or the wrapper key the weights were found under.
    also_present : list of str
        The other wrapper keys that hold tensors too (e.g. 'state_dict' when 'state_dict_ema' was picked).
    """
    if _is_state_dict(tree):
        return tree, TOP_LEVEL, []
    if type(tree) is dict:
        found = [key for key in WRAPPER_KEYS if _is_state_dict(tree.get(key))]
        if found:
            return tree[found[0]], found[0], found[1:]
        if all(type(key) is str for key in tree) and any(_is_tensor(value) for value in tree.values()):
            odd = [f"{key!r} ({_describe(value)})" for key, value in tree.items() if not _is_tensor(value)]
            raise CheckpointError(f"{source}: a dict of tensors also holds {_listing(odd)}; expected only tensors")
        wrapped = [f"{key!r} holds {_describe(tree[key])}" for key in WRAPPER_KEYS if key in tree]
        detail = "; ".join(wrapped) if wrapped else f"it is {_describe(tree)}"
        raise CheckpointError(
            f"{source}: found no state_dict (a dict of tensors at the top level or under "
            f"{', '.join(map(repr, WRAPPER_KEYS))}): {detail}"
        )
    hint = ""
    if isinstance(tree, Record):
        hint = ": this is a whole pickled model; load it in PyTorch and save model.state_dict() instead"
    raise CheckpointError(f"{source}: holds {_describe(tree)}, not a state_dict{hint}")


def clean_keys(weights: dict, source: str) -> tuple[dict, list[str]]:
    """Strip wrapper prefixes and drop ignorable entries.

    Returns
    -------
    cleaned : dict
        Same values, keys without ``PREFIXES`` (stripped repeatedly from the front).
    dropped : list of str
        The original keys dropped because their last part is in ``IGNORED_NAMES``.
    """
    cleaned, dropped, origin = {}, [], {}
    for key, value in weights.items():
        if key.rsplit(".", 1)[-1] in IGNORED_NAMES:
            dropped.append(key)
            continue
        name = key
        while name.startswith(PREFIXES):
            name = name.split(".", 1)[1]
        if name in cleaned:
            raise CheckpointError(f"{source}: keys {origin[name]!r} and {key!r} both become {name!r}")
        cleaned[name], origin[name] = value, key
    if not cleaned:
        raise CheckpointError(f"{source}: holds no weights besides {_listing(dropped)}")
    return cleaned, dropped


def check_values(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Convert every array to float32 and check it: floating point, finite, running variances >= 0.

    Parameters
    ----------
    arrays : dict of str to ndarray, any floating dtype

    Returns
    -------
    dict of str to ndarray of float32, same keys and shapes
    """
    not_float = [f"{key} ({array.dtype})" for key, array in arrays.items() if array.dtype.kind != "f"]
    if not_float:
        raise CheckpointError(f"{source}: weights must be floating point, but {_listing(not_float)} are not")
    with np.errstate(over="ignore"):  # values too large for float32 become inf and are reported below
        converted = {key: array.astype(np.float32) for key, array in arrays.items()}
    not_finite = [key for key, array in converted.items() if not np.isfinite(array).all()]
    negative = [key for key, array in converted.items()
                if key.endswith("running_var") and array.size and array.min() < 0]  # fmt: skip
    problems = []
    if not_finite:
        problems.append(f"NaN or infinite values (after conversion to float32) in {_listing(not_finite)}")
    if negative:
        problems.append(f"negative running variances in {_listing(negative)}")
    if problems:
        raise CheckpointError(f"{source}: the weights are unusable: {'; '.join(problems)}")
    return converted
