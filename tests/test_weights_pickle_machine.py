"""The opcode interpreter on its own: it agrees with the standard pickle on plain data, and its limits hold."""

import pickle
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weights_converter import CheckpointError
from weights_converter.pickle_machine import Limits, Record, is_forbidden, unpickle

hashables = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.text(max_size=20),
    st.binary(max_size=20),
)
plain_data = st.recursive(
    hashables | st.floats(allow_nan=False),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.text(string.ascii_letters, max_size=8), children, max_size=5),
        st.frozensets(hashables, max_size=4),
        st.sets(hashables, max_size=4),
    ),
    max_leaves=30,
)


def load(data: bytes, **options):
    return unpickle(data, source="test.pkl", globals_table={}, **options)[0]


@settings(max_examples=150, deadline=None)
@given(value=plain_data, protocol=st.integers(2, 5))
def test_plain_data_reads_as_the_standard_pickle_reads_it(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    assert load(data) == pickle.loads(data)


def test_hand_computed_example():
    # PROTO 2, EMPTY_DICT, MARK, 'a', 1, 'b', (None, True), SETITEMS, STOP
    data = b"\x80\x02}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bN\x88\x86u."
    assert unpickle(data, source="x", globals_table={}) == ({"a": 1, "b": (None, True)}, len(data))


def test_shared_references_stay_shared():
    inner = [1]
    result = load(pickle.dumps([inner, inner], protocol=2))
    assert result[0] is result[1]


def test_unknown_class_becomes_an_inert_record():
    data = b"\x80\x02cargparse\nNamespace\n)\x81}X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9asb."
    record = load(data)
    assert isinstance(record, Record)
    assert (record.class_name, record.args, record.state) == ("argparse.Namespace", (), {"lr": 0.1})


@pytest.mark.parametrize(
    "module, name, forbidden",
    [
        ("os", "system", True),
        ("os.path", "join", True),
        ("nt", "system", True),
        ("builtins", "getattr", True),
        ("numpy", "load", True),
        ("argparse", "Namespace", False),
        ("torch._utils", "_rebuild_tensor_v2", False),
        ("mymodule", "Thing.__reduce__", True),
        ("torch", "hub", False),
        ("torch.hub", "anything", True),
        ("subprocessing", "x", False),
    ],
)
def test_forbidden_names(module, name, forbidden):
    assert is_forbidden(module, name) is forbidden


@pytest.mark.parametrize(
    "data, limits, match",
    [
        (b"\x80\x02" + b"N0" * 50 + b"N.", Limits(max_opcodes=100), "more than 100 opcodes"),
        (b"\x80\x02" + b"N" * 20 + b"0" * 20 + b"N.", Limits(max_objects=10), "more than 10 objects"),
        (b"\x80\x02N" + b"".join(b"q" + bytes([i]) for i in range(20)) + b".", Limits(max_memo=10), "10 memo"),
        (b"\x80\x02" + b"(" * 30, Limits(max_depth=20), "MARKs more than 20 deep"),
        (b"\x80\x02N" + b"\x85" * 30 + b".", Limits(max_depth=20), "containers more than 20 deep"),
        (b"\x80\x02]" + b"]a" * 30 + b".", Limits(max_depth=20), None),
    ],
    ids=["opcodes", "objects", "memo", "marks", "tuples", "sibling-lists"],
)
def test_limits(data, limits, match):
    if match is None:  # siblings appended side by side are not nested: within the limit
        assert len(load(data, limits=limits)) == 30
        return
    with pytest.raises(CheckpointError, match=match):
        load(data, limits=limits)


def test_deep_nesting_through_appends_is_caught():
    data = b"\x80\x02]" + b"]" * 30 + b"a" * 30 + b"."  # each list appended into the one below it
    with pytest.raises(CheckpointError, match="containers more than 20 deep"):
        load(data, limits=Limits(max_depth=20))


def test_default_limits_hold_against_a_recursion_bomb():
    depth = 5_000  # far past Python's recursion limit
    with pytest.raises(CheckpointError, match="deep"):
        load(b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")
