"""Files that are not (good) weights: stand-ins, truncations, bad safetensors headers, hostile .npz.

Each raises CheckpointError with a sentence naming the file and saying what it is.
"""

import gzip
import io
import json
import struct
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from checkpoint_factory import safetensors_bytes, small_state_dict

from weights_converter import CheckpointError, read_checkpoint

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:8efbcf55d97872c828768b096d4ebebc51f8b7e29623fd3b3933d78cc230e2e2\n"
    "size 20844056\n"
)
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


def raises_naming_file(path, match: str):
    with pytest.raises(CheckpointError, match=match) as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value)


def tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("storages")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"abcd"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, match",
    [
        (LFS_POINTER.encode(), r"Git LFS pointer .* of 20,844,056 bytes: run `git lfs pull`"),
        (HTML_PAGE.encode(), "HTML page"),
        (b"  \n<html lang='en'><body>Sign in</body></html>", "HTML page"),
        (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', "XML document"),
        (b"", r"is empty \(0 bytes\)"),
        (b"\x00\x01", "2 bytes are too few"),
        (b"PK\x05\x06" + bytes(18), "empty zip archive"),
        (b"\x93NUMPY\x01\x00" + bytes(10), "single NumPy array"),
        (gzip.compress(b"weights" * 10), "gzip-compressed"),
        (tar_bytes(), "tar archive"),
        (b"just some text that is long enough", "not a weights format ghostnp recognises"),
    ],
    ids=["lfs", "html", "html-late", "xml", "empty", "tiny", "empty-zip", "npy", "gzip", "tar", "text"],
)
def test_stand_in_files_get_a_sentence(tmp_path, content, match):
    path = tmp_path / "ck_ghostnetv2_10.pth.tar"
    path.write_bytes(content)
    raises_naming_file(path, match)


def test_missing_file_and_folder(tmp_path):
    raises_naming_file(tmp_path / "absent.pth", "no such file")
    raises_naming_file(tmp_path, r"no such file \(it is a folder\)")


@pytest.fixture
def small_zip(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(small_state_dict(), path)
    return path


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_zip(small_zip, keep):
    data = small_zip.read_bytes()
    small_zip.write_bytes(data[: int(len(data) * keep)])
    raises_naming_file(small_zip, "truncated or damaged")


def test_flipped_storage_byte_fails_the_crc(small_zip):
    data = bytearray(small_zip.read_bytes())
    position = data.index(b"data/0") + 200  # inside the first storage record
    data[position] ^= 0xFF
    small_zip.write_bytes(bytes(data))
    raises_naming_file(small_zip, "damaged")


def test_zip_that_is_neither_torch_nor_npz(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    raises_naming_file(path, "neither a PyTorch checkpoint")


def test_zip_with_two_checkpoints(tmp_path):
    path = tmp_path / "two.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/data.pkl", b"\x80\x02}.")
        archive.writestr("b/data.pkl", b"\x80\x02}.")
    raises_naming_file(path, "2 data.pkl files")


def test_zip_with_duplicate_member_names(tmp_path):
    path = tmp_path / "dup.pth"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}.")
        archive.writestr("archive/data.pkl", b"\x80\x02}.")
    raises_naming_file(path, "same name")


def safetensors_file(tmp_path, header: dict, data: bytes, header_size: int | None = None):
    encoded = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded) if header_size is None else header_size) + encoded + data)
    return path


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    "header, data, header_size, match",
    [
        ({"w": entry("F32", [2], 0, 8)}, bytes(8), 2**40, "more than the 100 MB limit"),
        ({"w": entry("F32", [2], 0, 8)}, bytes(8), 10_000, "truncated: the safetensors header claims 10,000"),
        ({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12), None, "overlaps"),
        ({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, bytes(12), None, "hole of 4 bytes"),
        ({"w": entry("F32", [2], 0, 8)}, bytes(12), None, "4 trailing bytes"),
        ({"w": entry("F32", [4], 0, 16)}, bytes(8), None, "truncated: its tensors need 16"),
        ({"w": entry("F32", [3], 0, 8)}, bytes(8), None, "needs 12 bytes but its offsets span 8"),
        ({"w": entry("F32", [2**40, 2**40], 0, 8)}, bytes(8), None, "but its offsets span 8"),
        ({"w": entry("F8_E4M3", [2], 0, 2)}, bytes(2), None, "has dtype 'F8_E4M3'"),
        ({"w": entry("F32", [-1], 0, 0)}, b"", None, "not a list of sizes"),
        ({"w": entry("F32", [True], 0, 4)}, bytes(4), None, "not a list of sizes"),
        ({"w": entry("F32", [1], 4, 0)}, bytes(4), None, r"not \[begin, end\]"),
        ({"w": {"dtype": "F32", "shape": [1]}}, bytes(4), None, "exactly dtype, shape and data_offsets"),
        ({"__metadata__": {"a": 1}}, b"", None, "map strings to strings"),
    ],
    ids=[
        "header-over-limit",
        "header-past-end",
        "overlap",
        "hole",
        "trailing",
        "data-past-end",
        "size-mismatch",
        "huge-shape",
        "unknown-dtype",
        "negative-dim",
        "bool-dim",
        "reversed-offsets",
        "missing-field",
        "metadata-not-strings",
    ],  # fmt: skip
)
def test_safetensors_header_checks(tmp_path, header, data, header_size, match):
    raises_naming_file(safetensors_file(tmp_path, header, data, header_size), match)


@pytest.mark.parametrize(
    "header_text, match",
    [
        (b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not valid JSON"),
        (b'{"w": 1, "w": 2}', "duplicate key 'w'"),
        (b'{"w": "\xff"}', "not valid JSON"),
        (b'{"w": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
    ids=["deep-nesting", "duplicate-key", "not-utf8", "huge-integer"],
)
def test_safetensors_bad_json(tmp_path, header_text, match):
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header_text)) + header_text)
    raises_naming_file(path, match)


def test_safetensors_int64_weights_are_refused_but_int64_counters_dropped(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes({"bn1.num_batches_tracked": torch.tensor(3), "w": torch.ones(2)}))
    assert list(read_checkpoint(path)[0]) == ["w"]
    path.write_bytes(safetensors_bytes({"w": torch.ones(2, dtype=torch.int64)}))
    raises_naming_file(path, r"must be floating point, but w \(int64\)")


def test_npz_object_array_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.ones(2, np.float32), evil=np.array([{"a": 1}], dtype=object))
    raises_naming_file(path, "array of object, which needs pickle")


def npz_with_header(tmp_path, shape, data: bytes):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", buffer.getvalue() + data)
    return path


def test_npz_header_is_checked_before_allocation(tmp_path):
    np.testing.assert_array_equal(read_checkpoint(npz_with_header(tmp_path, (2,), bytes(8)))[0]["w"], [0, 0])
    raises_naming_file(npz_with_header(tmp_path, (10**6, 10**6), bytes(8)), r"4,000,000,000,000 bytes\) but holds 8")
    raises_naming_file(npz_with_header(tmp_path, (3,), bytes(8)), "but holds 8 bytes")


def test_npz_member_with_a_broken_header(tmp_path):
    path = tmp_path / "weights.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00garbage")
    raises_naming_file(path, "broken .npy header")


def test_state_dict_problems_are_reported_together(tmp_path):
    path = tmp_path / "weights.npz"
    values = {
        "a.weight": np.array([np.nan, 1], np.float32),
        "b.weight": np.array([np.inf], np.float32),
        "c.running_var": np.array([-1.0], np.float32),
        "d.weight": np.array([1e39]),  # finite in float64, infinite in float32
    }
    np.savez(path, **values)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert "a.weight, b.weight, d.weight" in message and "negative running variances in c.running_var" in message


def test_duplicate_keys_after_prefix_stripping(tmp_path):
    path = tmp_path / "dup.pth"
    torch.save({"module.w": torch.ones(1), "w": torch.ones(1)}, path)
    raises_naming_file(path, "keys 'module.w' and 'w' both become 'w'")


def test_training_checkpoint_without_weights(tmp_path):
    path = tmp_path / "optimizer_only.pth"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}, "state_dict": {"epoch": 1}}, path)
    raises_naming_file(path, "found no state_dict .* 'state_dict' holds a dict with keys 'epoch'")
