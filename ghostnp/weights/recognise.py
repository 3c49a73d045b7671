"""Recognise which GhostNet a state_dict belongs to, from its keys and shapes alone.

Each model in ``ghostnp.list_models()`` has an exact key set with shapes (``ghostnp.expected_shapes``).
A state_dict matches a model when it has every key, no other key, and every shape agrees; otherwise the
closest model's differences are reported all at once.
"""

from __future__ import annotations

import numpy as np

from ..errors import CheckpointError
from ..network.params import compare_shapes
from ..network.registry import expected_shapes, list_models


def model_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """``{name: expected_shapes(name)}`` for every model of ``list_models()``."""
    return {name: expected_shapes(name) for name in list_models()}


def detect_architecture(
    state_dict: dict[str, np.ndarray],
    candidates: dict[str, dict[str, tuple[int, ...]]] | None = None,
    *,
    source: str = "the state_dict",
) -> str:
    """Name the model whose keys and shapes the state_dict matches exactly.

    Parameters
    ----------
    state_dict : dict of str to ndarray
        Cleaned keys (as ``read_checkpoint`` returns them).
    candidates : dict of str to dict of str to tuple, optional
        Expected shapes by model name; defaults to every model in ``ghostnp.list_models()``.
    source : str
        Names the weights in the error message (e.g. the file).

    Returns
    -------
    str
        The model's name, e.g. 'ghostnetv2_100'.

    Raises
    ------
    CheckpointError
        When no model matches; lists the closest model's missing, unexpected and wrong-shape keys.
    """
    candidates = model_shapes() if candidates is None else candidates
    diffs = {name: compare_shapes(state_dict, expected) for name, expected in candidates.items()}
    for name, diff in diffs.items():
        if diff.count == 0:
            return name
    closest = min(diffs, key=lambda name: diffs[name].count)
    raise CheckpointError(
        f"{source}: the weights match none of {', '.join(candidates)}; the closest is {closest}, which differs in "
        f"{diffs[closest].count} keys:\n{diffs[closest].describe()}\n"
        "The file holds another network, or a modified GhostNet, which ghostnp cannot build."
    )


def check_architecture(
    state_dict: dict[str, np.ndarray],
    name: str,
    candidates: dict[str, dict[str, tuple[int, ...]]] | None = None,
    *,
    source: str = "the state_dict",
) -> None:
    """Raise ``CheckpointError`` unless the state_dict fits model ``name`` exactly (all differences listed)."""
    candidates = model_shapes() if candidates is None else candidates
    if name not in candidates:
        raise CheckpointError(f"unknown architecture {name!r}; choose one of {', '.join(candidates)}")
    diff = compare_shapes(state_dict, candidates[name])
    if diff.count:
        fits = [other for other, expected in candidates.items() if compare_shapes(state_dict, expected).count == 0]
        hint = f"\nThey fit {fits[0]}." if fits else ""
        raise CheckpointError(
            f"{source}: the weights do not fit {name} ({diff.count} differences):\n{diff.describe()}{hint}"
        )
