"""Read a pickle without executing it: an opcode interpreter with an allowlist.

``pickle.load`` imports any module and calls any function a file names, so opening a stranger's checkpoint
with it runs the stranger's code. Like PyTorch's ``weights_only`` unpickler, this module never imports
anything and never calls anything the file names. It walks the opcodes itself:

- ``OPCODES`` is the allowlist. Everything else (``INST``, ``OBJ``, ``EXT*``, protocol-5 buffers, the text
  opcodes of protocols 0 and 1) is refused with the opcode's name and byte offset.
- A global (``GLOBAL`` / ``STACK_GLOBAL``) resolves through a table the caller gives, mapping
  ``(module, name)`` to a ghostnp ``Handler`` or to a plain value. Names in ``FORBIDDEN_MODULES`` /
  ``FORBIDDEN_NAMES`` (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) are a hard error, except
  the few in ``SAFE_GLOBALS`` that protocol 2 needs for sets and bytes (done by ghostnp's own code). Any other
  unknown class (``argparse.Namespace`` in a training checkpoint) becomes an inert ``Record`` that keeps its
  arguments and state and does nothing.
- Containers are type-checked: ``APPEND`` only on a list, ``SETITEM`` only on a dict, ``BUILD`` only on a
  ``Record`` or a dict (whose attribute state, e.g. a state_dict's ``_metadata``, is dropped).
- ``Limits`` caps opcodes, objects, memo entries, nesting depth and integer size, so that a hostile
  file costs at most a few seconds and a bounded amount of memory.

Every problem raises ``CheckpointError`` naming the file, the opcode and its byte offset.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import CheckpointError

FORBIDDEN_MODULES = frozenset(
    "os posix nt sys subprocess builtins __builtin__ shutil importlib imp pty socket runpy code codeop pickle "
    "_pickle cPickle copyreg copy_reg marshal ctypes _ctypes webbrowser operator _operator functools types io _io "
    "pathlib tempfile signal multiprocessing asyncio commands popen2 platform posixpath ntpath glob urllib http "
    "ftplib smtplib telnetlib threading _thread gc inspect pdb bdb trace timeit profile cProfile site sysconfig "
    "zipimport pkgutil pip setuptools distutils _posixsubprocess mmap resource fcntl pydoc numpy.testing "
    "torch.hub torch.serialization torch._C torch.jit torch.package torch.ops torch.utils.cpp_extension".split()
)
"""Modules (and their submodules) whose names alone mark a pickle as malicious."""

FORBIDDEN_NAMES = frozenset(
    "eval exec compile system popen spawn execfile execv execve getattr setattr delattr open load loads "
    "apply call run Popen check_call check_output getoutput attrgetter methodcaller import_module input "
    "breakpoint globals locals vars".split()
)
"""Function names that are refused in any module (as would be any dunder name such as ``__import__``)."""

_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


class PickleProblem(Exception):
    """Raised by a ``Handler``'s function; ``Handler.call`` turns it into a ``CheckpointError`` naming the file."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one pickle may ask for (defaults are about 100 x what a training checkpoint needs)."""

    max_opcodes: int = 5_000_000
    max_objects: int = 2_000_000
    max_memo: int = 1_000_000
    max_depth: int = 100
    max_long_bytes: int = 64


@dataclass(eq=False)
class Record:
    """An inert stand-in for an object of a class ghostnp does not know, e.g. ``argparse.Namespace``."""

    class_name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    state: Any = None


@dataclass(frozen=True, eq=False)
class InertClass:
    """A global that is neither allowed nor forbidden: calling it makes a ``Record``, nothing else."""

    name: str


@dataclass(frozen=True, eq=False)
class Handler:
    """A function ghostnp provides in place of a global the file names (e.g. ``_rebuild_tensor_v2``).

    ``function`` is called with the pickled arguments after their count is checked against
    ``min_args`` .. ``max_args``; it validates their types itself and raises ``CheckpointError``.
    """

    name: str
    function: Callable[..., Any]
    min_args: int
    max_args: int

    def call(self, args: tuple, source: str) -> Any:
        """Call ``function(*args)`` after checking the number of arguments."""
        if not self.min_args <= len(args) <= self.max_args:
            raise CheckpointError(
                f"{source}: the pickle calls {self.name} with {len(args)} arguments, "
                f"expected {self.min_args} to {self.max_args}: the file is damaged or not a PyTorch checkpoint"
            )
        try:
            return self.function(*args)
        except PickleProblem as problem:
            raise CheckpointError(f"{source}: {problem}") from None


def is_forbidden(module: str, name: str) -> bool:
    """Whether ``module.name`` is a global no weights file has a reason to name (``os.system``, ...)."""
    parts = module.split(".")
    if any(".".join(parts[: i + 1]) in FORBIDDEN_MODULES for i in range(len(parts))):
        return True
    return any(part in FORBIDDEN_NAMES or part.startswith("__") for part in name.split("."))


def _make_set(kind: type) -> Handler:
    def make(items=()):
        if type(items) not in (list, tuple):
            raise PickleProblem(f"the pickle builds a {kind.__name__} from a {type(items).__name__}")
        try:
            return kind(items)
        except TypeError as error:  # unhashable items
            raise PickleProblem(f"the pickle builds a {kind.__name__} of unhashable items ({error})") from error

    return Handler(kind.__name__, make, 0, 1)


def _empty_bytes() -> bytes:
    return b""


def _encode_latin1(text, encoding) -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise PickleProblem("the pickle uses _codecs.encode for something other than bytes")
    return text.encode("latin-1")


SAFE_GLOBALS = {
    **{(module, kind.__name__): _make_set(kind) for module in ("builtins", "__builtin__") for kind in (set, frozenset)},
    **{(module, "bytes"): Handler("bytes", _empty_bytes, 0, 0) for module in ("builtins", "__builtin__")},
    ("_codecs", "encode"): Handler("_codecs.encode", _encode_latin1, 2, 2),
}
"""How protocol 2 pickles sets and bytes (``builtins.set([items])``, ``_codecs.encode(text, 'latin1')``,
``builtins.bytes()``), each done by ghostnp's own function: the only builtins allowed."""


OPCODES = {
    0x80: "PROTO", 0x95: "FRAME", ord("."): "STOP",
    ord("("): "MARK", ord("1"): "POP_MARK", ord("0"): "POP", ord("2"): "DUP",
    ord("N"): "NONE", 0x88: "NEWTRUE", 0x89: "NEWFALSE",
    ord("J"): "BININT", ord("K"): "BININT1", ord("M"): "BININT2", 0x8A: "LONG1", 0x8B: "LONG4",
    ord("G"): "BINFLOAT",
    ord("X"): "BINUNICODE", 0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8",
    ord("T"): "BINSTRING", ord("U"): "SHORT_BINSTRING",
    ord("B"): "BINBYTES", ord("C"): "SHORT_BINBYTES", 0x8E: "BINBYTES8",
    ord(")"): "EMPTY_TUPLE", ord("t"): "TUPLE", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3",
    ord("]"): "EMPTY_LIST", ord("l"): "LIST", ord("a"): "APPEND", ord("e"): "APPENDS",
    ord("}"): "EMPTY_DICT", ord("d"): "DICT", ord("s"): "SETITEM", ord("u"): "SETITEMS",
    0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
    ord("c"): "GLOBAL", 0x93: "STACK_GLOBAL", ord("R"): "REDUCE", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX",
    ord("b"): "BUILD", ord("Q"): "BINPERSID",
    ord("h"): "BINGET", ord("j"): "LONG_BINGET", ord("q"): "BINPUT", ord("r"): "LONG_BINPUT", 0x94: "MEMOIZE",
}  # fmt: skip
"""The allowlist: opcode byte -> name; each name has one ``_op_<NAME>`` method below."""

_REFUSED = {
    ord("i"): "INST (protocol 0 class instantiation, never written by torch.save)",
    ord("o"): "OBJ (protocol 1 class instantiation, never written by torch.save)",
    0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
    0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ord("P"): "PERSID", ord("I"): "INT", ord("L"): "LONG", ord("F"): "FLOAT", ord("S"): "STRING",
    ord("V"): "UNICODE", ord("g"): "GET", ord("p"): "PUT",
}  # fmt: skip


def unpickle(
    data: bytes,
    *,
    source: str,
    globals_table: Mapping[tuple[str, str], Any],
    persistent_load: Callable[[Any], Any] | None = None,
    start: int = 0,
    limits: Limits = Limits(),
) -> tuple[Any, int]:
    """Interpret one pickle in ``data`` starting at byte ``start``.

    Parameters
    ----------
    data : bytes
        The buffer holding the pickle (it may hold more after the ``STOP`` opcode).
    source : str
        The file name, used in every error message.
    globals_table : mapping of (module, name) to Handler or value
        What each allowed global stands for. Forbidden names are refused before the table is consulted;
        names absent from the table become ``InertClass``.
    persistent_load : callable, optional
        Turns a ``BINPERSID`` id into an object (PyTorch uses it for storages); without it such ids are an error.
    start : int
        Offset of the pickle's first opcode.
    limits : Limits
        Caps on opcodes, objects, memo entries and nesting depth.

    Returns
    -------
    obj : object
        The unpickled object, made only of str, bytes, int, float, bool, None, tuple, list, dict, set,
        frozenset, ``Record`` and whatever the handlers and ``persistent_load`` return.
    end : int
        Offset just after the ``STOP`` opcode.
    """
    return _Machine(data, start, source, globals_table, persistent_load, limits).run()


class _Machine:
    """The interpreter's state: a stack, a stack of marks, a memo, and counters for the limits."""

    def __init__(self, data, start, source, globals_table, persistent_load, limits):
        self.data = bytes(data)
        self.end = len(self.data)
        self.pos = start
        self.source = source
        self.globals_table = globals_table
        self.persistent_load = persistent_load
        self.limits = limits
        self.stack: list = []
        self.metastack: list[list] = []
        self.memo: dict[int, Any] = {}
        self.objects = 0
        self.depth: dict[int, int] = {}  # id(container) -> nesting depth
        self.containers: list = []  # keeps containers alive so that their ids stay unique
        self.opname = "PROTO"
        self.at = start
        self.dispatch = {code: getattr(self, "_op_" + name) for code, name in OPCODES.items() if name != "STOP"}

    def fail(self, problem: str) -> NoReturn:
        raise CheckpointError(f"{self.source}: {problem}")

    def fail_here(self, problem: str) -> NoReturn:
        self.fail(f"{problem} (opcode {self.opname} at byte {self.at})")

    def run(self) -> tuple[Any, int]:
        for _ in range(self.limits.max_opcodes):
            self.at = self.pos
            code = self.read(1)[0]  # an int: indexing bytes
            if code not in OPCODES:
                refused = _REFUSED.get(code, f"0x{code:02x}")
                self.fail(f"the pickle uses opcode {refused} at byte {self.at}, which is not allowed in a weights file")
            self.opname = OPCODES[code]
            if self.opname == "STOP":
                if self.metastack or len(self.stack) != 1:
                    self.fail_here("the pickle ends with an unbalanced stack")
                return self.stack[0], self.pos
            self.dispatch[code]()
        self.fail(f"the pickle has more than {self.limits.max_opcodes:,} opcodes; refusing to go on")

    # ---- reading bytes -------------------------------------------------------------------------------------
    def read(self, size: int) -> bytes:
        if size > self.end - self.pos:
            self.fail(
                f"is truncated: the pickle needs {size} more bytes at byte {self.pos} but the data ends at "
                f"byte {self.end}; download the file again"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def read_line(self) -> str:
        end = self.data.find(b"\n", self.pos, self.pos + 256)
        if end < 0:
            self.fail_here("a GLOBAL name is not terminated within 256 bytes")
        return self.decode(self.read(end + 1 - self.pos)[:-1], "ascii")

    def decode(self, raw: bytes, encoding: str) -> str:
        try:
            return raw.decode(encoding, "surrogatepass" if encoding == "utf-8" else "strict")
        except UnicodeDecodeError:
            self.fail_here(f"a string is not valid {encoding}")

    # ---- the stack -----------------------------------------------------------------------------------------
    def push_new(self, obj: Any) -> None:
        self.objects += 1
        if self.objects > self.limits.max_objects:
            self.fail(f"the pickle creates more than {self.limits.max_objects:,} objects; refusing to go on")
        self.stack.append(obj)

    def pop(self) -> Any:
        if not self.stack:
            self.fail_here("the pickle pops from an empty stack")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            self.fail_here("the pickle uses the top of an empty stack")
        return self.stack[-1]

    def pop_mark(self) -> list:
        if not self.metastack:
            self.fail_here("the pickle has no MARK to return to")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def nest(self, container: Any, children) -> Any:
        """Record that ``container`` holds ``children`` and check the nesting depth."""
        depth = max((self.depth.get(id(child), 0) for child in children), default=0) + 1
        depth = max(depth, self.depth.get(id(container), 0))
        if depth > self.limits.max_depth:
            self.fail_here(f"the pickle nests containers more than {self.limits.max_depth} deep")
        if id(container) not in self.depth:
            self.containers.append(container)
        self.depth[id(container)] = depth
        return container

    def check_hashable(self, key: Any) -> None:
        try:
            hash(key)
        except TypeError:
            self.fail_here(f"the pickle uses a {type(key).__name__} as a dict key or set item")

    # ---- protocol and constants ----------------------------------------------------------------------------
    def _op_PROTO(self):
        protocol = self.read(1)[0]
        if not 2 <= protocol <= 5:
            self.fail_here(f"unsupported pickle protocol {protocol}")

    def _op_FRAME(self):
        size = self.unpack("<Q")
        if size > self.end - self.pos:
            self.fail(f"is truncated: a pickle frame of {size} bytes starts at byte {self.pos}, past the end")

    def _op_MARK(self):
        if len(self.metastack) >= self.limits.max_depth:
            self.fail_here(f"the pickle nests MARKs more than {self.limits.max_depth} deep")
        self.metastack.append(self.stack)
        self.stack = []

    def _op_POP_MARK(self):
        self.pop_mark()

    def _op_POP(self):
        self.pop()

    def _op_DUP(self):
        self.push_new(self.top())

    def _op_NONE(self):
        self.push_new(None)

    def _op_NEWTRUE(self):
        self.push_new(True)

    def _op_NEWFALSE(self):
        self.push_new(False)

    def _op_BININT(self):
        self.push_new(self.unpack("<i"))

    def _op_BININT1(self):
        self.push_new(self.unpack("<B"))

    def _op_BININT2(self):
        self.push_new(self.unpack("<H"))

    def read_long(self, size: int) -> int:
        if not 0 <= size <= self.limits.max_long_bytes:
            self.fail_here(f"an integer of {size} bytes is larger than {self.limits.max_long_bytes} bytes")
        return int.from_bytes(self.read(size), "little", signed=True)

    def _op_LONG1(self):
        self.push_new(self.read_long(self.unpack("<B")))

    def _op_LONG4(self):
        self.push_new(self.read_long(self.unpack("<i")))

    def _op_BINFLOAT(self):
        self.push_new(self.unpack(">d"))

    def _op_BINUNICODE(self):
        self.push_new(self.decode(self.read(self.unpack("<I")), "utf-8"))

    def _op_SHORT_BINUNICODE(self):
        self.push_new(self.decode(self.read(self.unpack("<B")), "utf-8"))

    def _op_BINUNICODE8(self):
        self.push_new(self.decode(self.read(self.unpack("<Q")), "utf-8"))

    def _op_BINSTRING(self):
        size = self.unpack("<i")
        if size < 0:
            self.fail_here("a string has a negative length")
        self.push_new(self.decode(self.read(size), "ascii"))

    def _op_SHORT_BINSTRING(self):
        self.push_new(self.decode(self.read(self.unpack("<B")), "ascii"))

    def _op_BINBYTES(self):
        self.push_new(self.read(self.unpack("<I")))

    def _op_SHORT_BINBYTES(self):
        self.push_new(self.read(self.unpack("<B")))

    def _op_BINBYTES8(self):
        self.push_new(self.read(self.unpack("<Q")))

    # ---- containers ----------------------------------------------------------------------------------------
    def push_tuple(self, items: list) -> None:
        self.push_new(self.nest(tuple(items), items))

    def pop_items(self, count: int) -> list:
        if len(self.stack) < count:
            self.fail_here(f"the pickle needs {count} items on the stack, it has {len(self.stack)}")
        items = self.stack[-count:]
        del self.stack[-count:]
        return items

    def _op_EMPTY_TUPLE(self):
        self.push_tuple([])

    def _op_TUPLE(self):
        self.push_tuple(self.pop_mark())

    def _op_TUPLE1(self):
        self.push_tuple(self.pop_items(1))

    def _op_TUPLE2(self):
        self.push_tuple(self.pop_items(2))

    def _op_TUPLE3(self):
        self.push_tuple(self.pop_items(3))

    def _op_EMPTY_LIST(self):
        self.push_new(self.nest([], []))

    def _op_LIST(self):
        items = self.pop_mark()
        self.push_new(self.nest(list(items), items))

    def target(self, kind: type) -> Any:
        """The container below the new items, which must be exactly of type ``kind``."""
        container = self.top()
        if type(container) is not kind:
            self.fail_here(
                f"the pickle adds items to a {type(container).__name__}, where a {kind.__name__} is required"
            )
        return container

    def _op_APPEND(self):
        value = self.pop()
        self.nest(self.target(list), [value]).append(value)

    def _op_APPENDS(self):
        items = self.pop_mark()
        self.nest(self.target(list), items).extend(items)

    def _op_EMPTY_DICT(self):
        self.push_new(self.nest({}, []))

    def set_items(self, container: dict, items: list) -> None:
        if len(items) % 2:
            self.fail_here("the pickle gives a dict an odd number of keys and values")
        for key, value in zip(items[::2], items[1::2]):
            self.check_hashable(key)
            container[key] = value
        self.nest(container, items)

    def _op_DICT(self):
        container = {}
        self.set_items(container, self.pop_mark())
        self.push_new(container)

    def _op_SETITEM(self):
        value = self.pop()
        key = self.pop()
        self.set_items(self.target(dict), [key, value])

    def _op_SETITEMS(self):
        items = self.pop_mark()
        self.set_items(self.target(dict), items)

    def _op_EMPTY_SET(self):
        self.push_new(self.nest(set(), []))

    def _op_ADDITEMS(self):
        items = self.pop_mark()
        container = self.target(set)
        for item in items:
            self.check_hashable(item)
        self.nest(container, items).update(items)

    def _op_FROZENSET(self):
        items = self.pop_mark()
        for item in items:
            self.check_hashable(item)
        self.push_new(self.nest(frozenset(items), items))

    # ---- globals and calls ---------------------------------------------------------------------------------
    def resolve(self, module: str, name: str) -> Any:
        if not (_DOTTED_NAME.match(module) and _DOTTED_NAME.match(name)):
            self.fail_here(f"the pickle names a global {module!r}.{name!r} that is not a Python name")
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[module, name]
        if is_forbidden(module, name):
            self.fail(
                f"the pickle asks for {module}.{name}, which can run code on your machine (at byte {self.at}). "
                "Nothing was executed. This file is malicious or not a plain weights file: "
                "do not open it with torch.load or pickle either"
            )
        return self.globals_table.get((module, name), InertClass(f"{module}.{name}"))

    def _op_GLOBAL(self):
        module = self.read_line()
        name = self.read_line()
        self.push_new(self.resolve(module, name))

    def _op_STACK_GLOBAL(self):
        name = self.pop()
        module = self.pop()
        if type(module) is not str or type(name) is not str:
            self.fail_here("STACK_GLOBAL needs two strings")
        self.push_new(self.resolve(module, name))

    def instantiate(self, callee: Any, args: Any, kwargs: dict) -> Any:
        if type(args) is not tuple:
            self.fail_here(f"the pickle passes a {type(args).__name__} as an argument tuple")
        if isinstance(callee, InertClass):
            return self.nest(Record(callee.name, args, kwargs), [args, kwargs])
        if isinstance(callee, Handler) and not kwargs:
            return callee.call(args, self.source)
        self.fail_here(f"the pickle calls a {type(callee).__name__}, which is not a callable global")

    def _op_REDUCE(self):
        args = self.pop()
        self.push_new(self.instantiate(self.pop(), args, {}))

    def _op_NEWOBJ(self):
        args = self.pop()
        self.push_new(self.instantiate(self.pop(), args, {}))

    def _op_NEWOBJ_EX(self):
        kwargs = self.pop()
        args = self.pop()
        if type(kwargs) is not dict:
            self.fail_here(f"the pickle passes a {type(kwargs).__name__} as keyword arguments")
        self.push_new(self.instantiate(self.pop(), args, kwargs))

    def _op_BUILD(self):
        state = self.pop()
        obj = self.top()
        if isinstance(obj, Record):
            obj.state = state
            self.nest(obj, [state])
        elif type(obj) is not dict:  # a dict's attribute state (a state_dict's _metadata) is dropped
            self.fail_here(f"the pickle sets the state of a {type(obj).__name__}")

    def _op_BINPERSID(self):
        pid = self.pop()
        if self.persistent_load is None:
            self.fail_here("the pickle refers to external data (a persistent id), which this format does not have")
        self.push_new(self.persistent_load(pid))

    # ---- the memo ------------------------------------------------------------------------------------------
    def get(self, index: int) -> None:
        if index not in self.memo:
            self.fail_here(f"the pickle refers to memo entry {index}, which was never stored")
        self.push_new(self.memo[index])

    def put(self, index: int) -> None:
        if index not in self.memo and len(self.memo) >= self.limits.max_memo:
            self.fail_here(f"the pickle stores more than {self.limits.max_memo:,} memo entries")
        self.memo[index] = self.top()

    def _op_BINGET(self):
        self.get(self.unpack("<B"))

    def _op_LONG_BINGET(self):
        self.get(self.unpack("<I"))

    def _op_BINPUT(self):
        self.put(self.unpack("<B"))

    def _op_LONG_BINPUT(self):
        self.put(self.unpack("<I"))

    def _op_MEMOIZE(self):
        self.put(len(self.memo))
