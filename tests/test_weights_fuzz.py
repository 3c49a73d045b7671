"""Random damage to valid small checkpoints: each either loads or raises CheckpointError, nothing else.

The error must also come from a check that anticipated it (not from ``read_checkpoint``'s last-resort
conversion of unexpected exceptions, whose message carries ``UNEXPECTED``).
"""

import io
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from checkpoint_factory import safetensors_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weights_converter import CheckpointError, read_checkpoint
from weights_converter.reader import UNEXPECTED

STATE = OrderedDict(
    [
        ("conv.weight", torch.arange(12, dtype=torch.float32).reshape(2, 1, 2, 3)),
        ("bn.running_var", torch.tensor([1.0, 2.0])),
        ("bn.num_batches_tracked", torch.tensor(3)),
        ("view", torch.arange(6, dtype=torch.float32).reshape(2, 3).t()),
    ]
)


def saved(**options) -> bytes:
    buffer = io.BytesIO()
    torch.save(STATE, buffer, **options)
    return buffer.getvalue()


def members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


ZIP = saved()
LEGACY = saved(_use_new_zipfile_serialization=False)
PROTOCOL_4 = saved(pickle_protocol=4)
SAFETENSORS = safetensors_bytes(STATE)
NPZ = io.BytesIO()
np.savez(NPZ, **{key: value.numpy() for key, value in STATE.items()})

mutations = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=4)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutate(data: bytes, changes, cut: int | None = None) -> bytes:
    mutated = bytearray(data)
    for position, value in changes:
        mutated[position % len(mutated)] = value
    return bytes(mutated[:cut] if cut else mutated)


def loads_or_refuses(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        weights, _ = read_checkpoint(path)
    except CheckpointError as error:
        assert UNEXPECTED not in str(error), str(error)
        assert str(path) in str(error)
    else:
        assert all(value.dtype == np.float32 and np.isfinite(value).all() for value in weights.values())


@pytest.mark.parametrize("original", [ZIP, LEGACY, PROTOCOL_4, SAFETENSORS, NPZ.getvalue()],
                         ids=["zip", "legacy", "protocol-4", "safetensors", "npz"])  # fmt: skip
def test_originals_load(tmp_path, original):
    path = tmp_path / "original"
    path.write_bytes(original)
    assert list(read_checkpoint(path)[0]) == ["conv.weight", "bn.running_var", "view"]


@pytest.mark.parametrize("original", [LEGACY, SAFETENSORS, ZIP, NPZ.getvalue()],
                         ids=["legacy", "safetensors", "zip", "npz"])  # fmt: skip
@FUZZ
@given(changes=mutations, cut=st.none() | st.integers(1, 4000))
def test_whole_file_mutations(tmp_path, original, changes, cut):
    loads_or_refuses(tmp_path / "fuzzed.pth", mutate(original, changes, cut))


@pytest.mark.parametrize("original", [ZIP, PROTOCOL_4], ids=["protocol-2", "protocol-4"])
@FUZZ
@given(changes=mutations, cut=st.none() | st.integers(1, 2000))
def test_pickle_mutations_inside_a_well_formed_zip(tmp_path, original, changes, cut):
    """Mutating data.pkl and re-zipping (so that the CRC is right) reaches the pickle machine itself."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members(original):
            archive.writestr(name, mutate(data, changes, cut) if name.endswith("data.pkl") else data)
    loads_or_refuses(tmp_path / "fuzzed.pth", buffer.getvalue())
