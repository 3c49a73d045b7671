"""What a PyTorch checkpoint's pickle may name: the globals table and the storage persistent ids.

``torch.save`` pickles a tensor as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
where ``storage`` is a persistent id ``('storage', torch.FloatStorage, key, location, numel)`` (the legacy
format adds a sixth item, a view of the storage or None). Here each of those globals stands for a small
ghostnp function that builds an inert ``TensorRef``; nothing from torch is imported or called.
"""

from __future__ import annotations

from typing import Any

from .errors import CheckpointError
from .pickle_machine import Handler
from .tensors import STORAGE_TYPES, StorageRef, StorageType, TensorRef, make_tensor


def torch_globals(source: str) -> dict[tuple[str, str], Any]:
    """The globals a PyTorch state_dict or training checkpoint needs, for the file ``source``."""

    def rebuild_tensor(storage, offset, size, stride, *_ignored) -> TensorRef:
        return make_tensor(storage, offset, size, stride, source)

    def rebuild_parameter(data, *_ignored) -> TensorRef:
        if not isinstance(data, TensorRef):
            raise CheckpointError(f"{source}: a Parameter wraps a {type(data).__name__}, not a tensor")
        return data

    def rebuild_from_type(function, _new_type, args, _state) -> Any:
        if not isinstance(function, Handler) or type(args) is not tuple:
            raise CheckpointError(f"{source}: a tensor subclass is rebuilt by something other than a tensor function")
        return function.call(args, source)

    def ordered_dict() -> dict:
        return {}

    def torch_size(dims) -> tuple:
        if type(dims) not in (tuple, list) or not all(type(n) is int for n in dims):
            raise CheckpointError(f"{source}: torch.Size({dims!r:.80}) is not a tuple of integers")
        return tuple(dims)

    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): Handler("collections.OrderedDict", ordered_dict, 0, 0),
        ("torch._utils", "_rebuild_tensor"): Handler("_rebuild_tensor", rebuild_tensor, 4, 4),
        ("torch._utils", "_rebuild_tensor_v2"): Handler("_rebuild_tensor_v2", rebuild_tensor, 6, 7),
        ("torch._utils", "_rebuild_parameter"): Handler("_rebuild_parameter", rebuild_parameter, 3, 3),
        ("torch._utils", "_rebuild_parameter_with_state"): Handler(
            "_rebuild_parameter_with_state", rebuild_parameter, 4, 4
        ),
        ("torch._tensor", "_rebuild_from_type_v2"): Handler("_rebuild_from_type_v2", rebuild_from_type, 4, 4),
        ("torch", "Size"): Handler("torch.Size", torch_size, 1, 1),
    }
    table.update({("torch", name): storage_type for name, storage_type in STORAGE_TYPES.items()})
    return table


def parse_storage_id(pid: Any, source: str, *, legacy: bool) -> tuple[str, StorageType, int, Any]:
    """Check a storage persistent id and return ``(key, storage_type, numel, view)``.

    Parameters
    ----------
    pid : object
        ``('storage', storage_type, key, location, numel)``, plus ``view`` (None or
        ``(view_key, offset, numel)``) in the legacy format. The location ('cpu', 'cuda:0', ...) is ignored:
        ghostnp always reads into host memory.
    source : str
        The file name, for messages.
    legacy : bool
        Whether the id comes from the legacy (non-zip) format.
    """
    size = 6 if legacy else 5
    if not (type(pid) is tuple and len(pid) == size and pid[0] == "storage"):
        kind = pid[0] if type(pid) is tuple and pid and type(pid[0]) is str else None
        what = f"a {len(pid)}-tuple of kind {kind!r:.40}" if kind is not None else f"a {type(pid).__name__}"
        hint = ": a whole pickled model; load it in PyTorch and save model.state_dict()" if kind == "module" else ""
        raise CheckpointError(
            f"{source}: the pickle refers to external data by {what}, where a "
            f"('storage', type, key, location, numel{', view' if legacy else ''}) tuple is required{hint}"
        )
    _, storage_type, key, location, numel = pid[:5]
    if not (
        isinstance(storage_type, StorageType)
        and type(key) is str
        and type(location) is str
        and type(numel) is int
        and numel >= 0
    ):
        name = getattr(storage_type, "name", type(storage_type).__name__)
        raise CheckpointError(
            f"{source}: storage record {key!r:.40} of type {name!r:.60} is malformed or of a dtype ghostnp "
            f"does not read (it reads {', '.join(STORAGE_TYPES)})"
        )
    return key, storage_type, numel, pid[5] if legacy else None


def storage_ref(key: str, storage_type: StorageType, numel: int, view: Any, source: str) -> StorageRef:
    """A reference to a whole storage, or (legacy format) to a ``(view_key, offset, numel)`` slice of it."""
    if view is None:
        return StorageRef(key, storage_type, numel)
    if not (
        type(view) is tuple
        and len(view) == 3
        and type(view[1]) is int
        and type(view[2]) is int
        and 0 <= view[1]
        and 0 <= view[2]
        and view[1] + view[2] <= numel
    ):
        raise CheckpointError(f"{source}: storage view {view!r:.80} lies outside storage {key!r} of {numel} elements")
    return StorageRef(key, storage_type, view[2], offset=view[1])
