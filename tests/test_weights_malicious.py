"""Hostile checkpoints: code-running pickles, type-confused containers, lying sizes.

Every case raises CheckpointError with the file's name in the message, and nothing in the file runs:
each code-running payload is first shown to create its sentinel file under the standard ``pickle``,
then shown not to under ``read_checkpoint``.
"""

import pickle
import struct
import subprocess
from collections import OrderedDict

import numpy as np
import pytest
import torch
from checkpoint_factory import binunicode, replace_member, small_state_dict, zip_checkpoint, zip_member

from weights_converter import CheckpointError, read_checkpoint


def binint(value: int) -> bytes:
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    return b"\x8a\x08" + struct.pack("<q", value)  # LONG1


def int_tuple(values) -> bytes:
    return b"(" + b"".join(binint(value) for value in values) + b"t"


def tensor_pickle(numel=4, offset=0, size=(4,), stride=(1,), storage_type=b"FloatStorage", pid=None) -> bytes:
    """A protocol-2 data.pkl for ``{'w': tensor}``, written opcode by opcode as torch.save writes it."""
    if pid is None:
        pid = b"(" + binunicode("storage") + b"ctorch\n" + storage_type + b"\n" + binunicode("0") + binunicode("cpu")
        pid += binint(numel) + b"t"
    return (
        b"\x80\x02}(" + binunicode("w") + b"ctorch._utils\n_rebuild_tensor_v2\n("
        + pid + b"Q" + binint(offset) + int_tuple(size) + int_tuple(stride)
        + b"\x89ccollections\nOrderedDict\n)RtRu."
    )  # fmt: skip


def hostile_zip(path, data_pkl, records=None):
    return zip_checkpoint(path, data_pkl, records)


def hostile_legacy(path, data_pkl, records=None):
    # a legacy file starts with a pickle: the payload stands in for the magic number
    path.write_bytes(data_pkl if data_pkl.startswith(b"\x80") else b"\x80\x02" + data_pkl)
    return path


def raises_naming_file(path, match: str):
    with pytest.raises(CheckpointError, match=match) as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_hand_made_tensor_pickle_is_a_valid_checkpoint(tmp_path):
    """The positive control for the hand-made pickles below."""
    values = np.arange(6, dtype=np.float32)
    path = zip_checkpoint(tmp_path / "ok.pth", tensor_pickle(6, 1, (2, 2), (1, 3)), {"0": values.tobytes()})
    np.testing.assert_array_equal(read_checkpoint(path)[0]["w"], [[1, 4], [2, 5]])


def payloads(sentinel):
    command = f"touch {sentinel}"
    arg = binunicode(command)
    python = binunicode(f"open({str(sentinel)!r}, 'w').close()")
    popen = b"]" + binunicode("touch") + b"a" + binunicode(str(sentinel)) + b"a"
    return {
        "GLOBAL+REDUCE os.system": b"\x80\x02cos\nsystem\n" + arg + b"\x85R.",
        "GLOBAL+REDUCE posix.system": b"\x80\x02cposix\nsystem\n" + arg + b"\x85R.",
        "STACK_GLOBAL os.system": b"\x80\x04\x8c\x02os\x8c\x06system\x93" + arg + b"\x85R.",
        "INST os.system": b"(" + arg + b"ios\nsystem\n.",
        "OBJ os.system": b"(cos\nsystem\n" + arg + b"o.",
        "builtins.eval": b"\x80\x02cbuiltins\neval\n" + python + b"\x85R.",
        "builtins.exec": b"\x80\x02cbuiltins\nexec\n" + python + b"\x85R.",
        "subprocess.Popen": b"\x80\x02csubprocess\nPopen\n" + popen + b"\x85R.",
    }


PAYLOAD_NAMES = list(payloads("x"))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_payload_is_live_under_the_standard_pickle(tmp_path, name):
    """Proof that the payloads would run: the standard pickle module creates the sentinel."""
    sentinel = tmp_path / "pwned"
    result = pickle.loads(payloads(sentinel)[name])
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert sentinel.exists()


@pytest.mark.parametrize("wrap", [hostile_zip, hostile_legacy], ids=["zip", "legacy"])
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_code_running_pickle_is_refused_and_nothing_runs(tmp_path, name, wrap):
    sentinel = tmp_path / "pwned"
    path = wrap(tmp_path / "evil.pth", payloads(sentinel)[name])
    raises_naming_file(path, "can run code|not allowed")
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "data_pkl, match",
    [
        (b"\x80\x02]" + binunicode("k") + binunicode("v") + b"s.", "adds items to a list, where a dict"),
        (b"\x80\x02}" + binint(1) + b"a.", "adds items to a dict, where a list"),
        (b"\x80\x02}(" + binunicode("k") + binunicode("v") + b"e.", "adds items to a dict, where a list"),
        (b"\x80\x02]" + binint(1) + b"b.", "sets the state of a list"),
        (b"\x80\x02])R.", "calls a list"),
        (b"\x80\x02}]]s.", "uses a list as a dict key"),
        (b"\x80\x02h\x05.", "memo entry 5, which was never stored"),
        (b"\x80\x02s.", "pops from an empty stack"),
        (b"\x80\x02(.", "unbalanced stack"),
        (b"\x80\x02\x8a\xffABC.", "integer of 255 bytes"),
        (b"\x80\x02X\xff\xff\xff\x7f.", "truncated"),
        (b"\x80\x02ctorch\nload\n.", "can run code"),
        (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.", "0 arguments"),
    ],
    ids=[
        "setitem-on-list",
        "append-on-dict",
        "appends-on-dict",
        "build-on-list",
        "reduce-on-list",
        "unhashable-key",
        "memo-miss",
        "stack-underflow",
        "open-mark",
        "huge-long",
        "string-past-end",
        "torch.load",
        "wrong-arity",
    ],  # fmt: skip
)
def test_malformed_pickle_is_refused(tmp_path, data_pkl, match):
    raises_naming_file(zip_checkpoint(tmp_path / "bad.pth", data_pkl), match)


@pytest.mark.parametrize(
    "pid, match",
    [
        (binunicode("storage"), "external data by a str"),
        (b"(" + binunicode("module") + b"t", "whole pickled model"),
        (
            b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu") + b"t",
            "4-tuple of kind 'storage'",
        ),
        (
            b"("
            + binunicode("storage")
            + binunicode("FloatStorage")
            + binunicode("0")
            + binunicode("cpu")
            + binint(4)
            + b"t",
            "malformed",
        ),
        (
            b"("
            + binunicode("storage")
            + b"ctorch\nComplexFloatStorage\n"
            + binunicode("0")
            + binunicode("cpu")
            + binint(4)
            + b"t",
            "ComplexFloatStorage",
        ),
        (
            b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binint(0) + binunicode("cpu") + binint(4) + b"t",
            "malformed",
        ),
        (
            b"("
            + binunicode("storage")
            + b"ctorch\nFloatStorage\n"
            + binunicode("0")
            + binunicode("cpu")
            + binint(-4)
            + b"t",
            "malformed",
        ),
    ],
    ids=["string", "module", "short-tuple", "type-is-string", "complex", "key-is-int", "negative-numel"],
)
def test_bad_persistent_id_is_refused(tmp_path, pid, match):
    path = zip_checkpoint(tmp_path / "bad.pth", tensor_pickle(pid=pid), {"0": bytes(16)})
    raises_naming_file(path, match)


@pytest.mark.parametrize(
    "records, match",
    [
        ({"0": bytes(12)}, "holds 12 bytes, but the pickle declares 4 x 4 = 16"),
        ({"0": bytes(20)}, "holds 20 bytes, but the pickle declares 4 x 4 = 16"),
        ({}, "missing from the zip"),
        ({"1": bytes(16)}, "missing from the zip"),
    ],
    ids=["too-short", "too-long", "missing", "other-key"],
)
def test_storage_record_of_the_wrong_size_is_refused(tmp_path, records, match):
    raises_naming_file(zip_checkpoint(tmp_path / "bad.pth", tensor_pickle(), records), match)


def test_storage_record_size_lie_in_a_real_checkpoint(tmp_path):
    path = tmp_path / "real.pth"
    torch.save(small_state_dict(), path)
    original = zip_member(path, "/data/0")
    replace_member(path, "/data/0", original[:-4])
    raises_naming_file(path, "holds 428 bytes, but the pickle declares 108 x 4 = 432")


@pytest.mark.parametrize(
    "numel, offset, size, stride",
    [
        (4, 0, (5,), (1,)),
        (4, 1, (4,), (1,)),
        (4, 0, (2, 2), (3, 1)),
        (4, 0, (10**12,), (0,)),
        (4, 0, (4, 1), (1,)),
        (4, -1, (2,), (1,)),
        (4, 0, (2,), (-1,)),
    ],
    ids=[
        "past-end",
        "offset-past-end",
        "stride-past-end",
        "stride-0-huge",
        "rank-mismatch",
        "negative-offset",
        "negative-stride",
    ],  # fmt: skip
)
def test_view_outside_its_storage_is_refused(tmp_path, numel, offset, size, stride):
    path = zip_checkpoint(tmp_path / "bad.pth", tensor_pickle(numel, offset, size, stride), {"0": bytes(4 * numel)})
    raises_naming_file(path, "reaches element|malformed")


def legacy_checkpoint(tmp_path, values=(1.0, 2.0, 3.0, 4.0)):
    path = tmp_path / "legacy.pth"
    torch.save(OrderedDict(w=torch.tensor(values)), path, _use_new_zipfile_serialization=False)
    return path, bytearray(path.read_bytes())


def test_legacy_valid_single_tensor(tmp_path):
    path, data = legacy_checkpoint(tmp_path)
    assert struct.unpack("<q", data[-24:-16]) == (4,)  # the count before the 16 bytes of data
    np.testing.assert_array_equal(read_checkpoint(path)[0]["w"], [1, 2, 3, 4])


@pytest.mark.parametrize("count", [3, 5, 2**62, -1])
def test_legacy_storage_count_lie_is_refused(tmp_path, count):
    path, data = legacy_checkpoint(tmp_path)
    data[-24:-16] = struct.pack("<q", count)
    path.write_bytes(bytes(data))
    raises_naming_file(path, f"says it holds {count} elements but its tensors declare 4")


@pytest.mark.parametrize("cut, match", [(4, "truncated"), (20, "truncated"), (-3, "unexpected bytes")])
def test_legacy_truncated_or_padded_is_refused(tmp_path, cut, match):
    path, data = legacy_checkpoint(tmp_path)
    path.write_bytes(bytes(data[:-cut]) if cut > 0 else bytes(data) + b"\0" * -cut)
    raises_naming_file(path, match)


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    raises_naming_file(path, "plain pickle, not a PyTorch checkpoint")


def test_whole_pickled_model_gets_a_hint(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    raises_naming_file(path, "pickled torch.nn.modules.linear.Linear object, not a state_dict: this is a whole")
