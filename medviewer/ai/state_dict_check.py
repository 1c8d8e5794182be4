"""Is a torch weights file a plain state dict? Decided without torch and without running the file.

    state_dict_problem(path) -> ''  (a mapping of str -> tensor that torch.load(weights_only=True)
                                     reads), else the reason in one line

A torch.save file is a zip archive whose <archive>/data.pkl is a pickle. Unpickling runs whatever
callables the pickle names, so here it is unpickled with a find_class that knows only the few
globals torch writes for tensors (rebuild functions, typed storages, OrderedDict) and answers each
with a harmless stand-in: nothing from the file is imported or called. The result must be a dict of
str -> tensor stand-in, and each tensor must fit in a storage present in the archive with the bytes
it needs. The globals accepted are a subset of torch's weights_only allow-list, so a file that
passes here is one `torch.load(..., weights_only=True)` loads; what torch would refuse (a
__reduce__ payload, a class, a checkpoint holding an optimiser or epoch numbers) is refused here
first, with the name the file asked for. torch's legacy (pre-1.6, non-zip) format is not accepted.
No torch import: the viewer lists models without paying for it.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path

from medviewer.ai.model_files import shown
from medviewer.core.memory import TooLarge, check_fits

MAX_PICKLE_BYTES = 16 << 20  # data.pkl of a state dict is ~100 bytes per tensor
# the opcodes torch.save writes for a state dict (any protocol); no sets, no classes, no extensions
OPCODES = frozenset("PROTO FRAME STOP MARK EMPTY_DICT EMPTY_LIST EMPTY_TUPLE DICT LIST TUPLE TUPLE1 "
                    "TUPLE2 TUPLE3 SETITEM SETITEMS APPEND APPENDS BINUNICODE SHORT_BINUNICODE "
                    "BINUNICODE8 BININT BININT1 BININT2 LONG1 NEWFALSE NEWTRUE NONE BINFLOAT GLOBAL "
                    "STACK_GLOBAL REDUCE BUILD BINPERSID PUT BINPUT LONG_BINPUT MEMOIZE GET BINGET "
                    "LONG_BINGET".split())
ENCRYPTED = 0x0001 | 0x0020 | 0x0040 | 0x2000  # zip flag bits: encrypted, patched, strong, masked
PARSED_PER_BYTE = 64  # with those opcodes, one byte makes at most one empty dict (64 bytes)
STORAGE_BYTES = {  # torch.<Type>Storage -> bytes per element
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16,
}


class Refused(Exception):
    """The file is not a plain state dict; the text completes "it ..." (one line)."""


class Forbidden(Refused):
    """The pickle names a global (a callable to run) outside GLOBALS."""


class _StorageType:
    __slots__ = ("name", "itemsize")

    def __init__(self, name: str):
        self.name, self.itemsize = name, STORAGE_BYTES[name]


class _Storage:
    __slots__ = ("key", "itemsize", "numel")

    def __init__(self, key: str, itemsize: int, numel: int):
        self.key, self.itemsize, self.numel = key, itemsize, numel


class _Tensor:
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _OrderedDict(dict):
    """collections.OrderedDict as torch pickles it (a state dict's _metadata arrives by BUILD)."""
    __slots__ = ()

    def __setstate__(self, state) -> None:  # the _metadata attribute: version numbers, not weights
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise Refused("holds an OrderedDict with attributes other than _metadata")


def _ints(values, n: int | None = None) -> bool:
    return (isinstance(values, tuple) and (n is None or len(values) == n)
            and all(type(v) is int and v >= 0 for v in values))


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not (isinstance(storage, _Storage) and type(offset) is int and offset >= 0 and _ints(size)
            and _ints(stride, len(size))):
        raise Refused("holds a tensor with a malformed layout")
    if hooks or metadata:
        raise Refused("holds a tensor with hooks or metadata")
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    if not isinstance(data, _Tensor) or hooks:
        raise Refused("holds a parameter that is not a plain tensor")
    return data


GLOBALS = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
           ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
           ("collections", "OrderedDict"): _OrderedDict,
           **{("torch", name): _StorageType(name) for name in STORAGE_BYTES}}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = GLOBALS.get((module, name))
        if found is None:
            raise Forbidden(f"{shown(module)}.{shown(name)}")
        return found

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and pid[2].isdigit()
                and type(pid[4]) is int and pid[4] >= 0):
            raise Refused("holds a storage reference of an unknown form")
        return _Storage(pid[2], pid[1].itemsize, pid[4])


def _data_pickle(archive: zipfile.ZipFile) -> tuple[str, bytes]:
    """(the archive's folder name, the bytes of its data.pkl), once every record is one torch's
    reader takes: stored uncompressed, not encrypted, its local header intact."""
    for info in archive.infolist():
        if (info.compress_type != zipfile.ZIP_STORED or info.flag_bits & ENCRYPTED or info.volume
                or info.file_size != info.compress_size):
            raise Refused("has a compressed, encrypted or inconsistent record, which torch.save never writes")
        archive.open(info).close()  # reads and checks the record's local header, not its data
    records = [i for i in archive.infolist() if i.filename.count("/") == 1 and i.filename.endswith("/data.pkl")]
    if len(records) != 1:
        raise Refused("has no single <archive>/data.pkl record (it is not a torch.save file)")
    if records[0].file_size > MAX_PICKLE_BYTES:
        raise Refused(f"has a data.pkl of {records[0].file_size} bytes, more than a state dict needs")
    check_fits(PARSED_PER_BYTE * records[0].file_size, "its pickle unpacked")
    with archive.open(records[0]) as fp:
        return records[0].filename.split("/")[0], fp.read(MAX_PICKLE_BYTES + 1)


def _prescan(data: bytes) -> None:
    """Walk the opcodes without building anything (pickletools): the pickle must be whole, use
    only OPCODES (which bounds the memory its objects take), and each memo index must be one the
    pickle has earned (the C unpickler sizes its memo by the largest index
    it sees: a ten-byte pickle asking for index 2**31 would make it allocate and clear 32 GB)."""
    stored: set[int] = set()
    for n, (op, arg, _) in enumerate(pickletools.genops(data)):
        if op.name == "GLOBAL" and tuple(arg.split(" ", 1)) not in GLOBALS:  # named first, when it is
            raise Forbidden(".".join(shown(part) for part in arg.split(" ", 1)))
        if op.name not in OPCODES:
            raise Refused(f"has the pickle opcode {op.name}, which torch.save does not write for a state dict")
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            index = len(stored) if op.name == "MEMOIZE" else arg
            if not isinstance(index, int) or index > n:
                raise Refused("has a pickle memo index out of range")
            stored.add(index)
        elif op.name in ("GET", "BINGET", "LONG_BINGET") and arg not in stored:
            raise Refused("has a pickle reference to nothing")


def _layout_problem(name: str, tensor: _Tensor, sizes: dict[str, int], prefix: str) -> str:
    stored = sizes.get(f"{prefix}/data/{tensor.storage.key}")
    if stored is None:
        return f"tensor {name}: its storage {tensor.storage.key} is not in the archive"
    if stored < tensor.storage.numel * tensor.storage.itemsize:
        return f"tensor {name}: its storage holds {stored} bytes, fewer than its {tensor.storage.numel} elements need"
    if 0 not in tensor.size:
        last = tensor.offset + sum((s - 1) * st for s, st in zip(tensor.size, tensor.stride))
        if last >= tensor.storage.numel:
            return f"tensor {name}: it reaches past the end of its storage"
    return ""


def state_dict_problem(path: str | Path) -> str:
    """'' when `path` holds only a mapping of str -> tensor, else why not (one line)."""
    try:
        with zipfile.ZipFile(path) as archive:
            prefix, data = _data_pickle(archive)
            sizes = {i.filename: i.file_size for i in archive.infolist()}
    except zipfile.BadZipFile:
        return "it is not a torch.save zip archive (torch's legacy format and other pickles are not accepted)"
    except Refused as exc:
        return f"it {exc}"
    except TooLarge as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - damaged records: OSError, zlib.error, NotImplementedError ...
        return f"it cannot be read as a zip archive ({type(exc).__name__})"
    try:
        _prescan(data)
        state = _Unpickler(io.BytesIO(data)).load()
    except Forbidden as exc:
        return f"its pickle asks for {exc}, which is not part of a state dict"
    except Refused as exc:
        return f"it {exc}"
    except RecursionError:
        return "its pickle nests too deeply to be a state dict"
    except Exception as exc:  # noqa: BLE001 - any malformed pickle (UnpicklingError, EOFError, TypeError ...)
        return f"its pickle is malformed ({type(exc).__name__})"
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__.strip('_')}, not a state dict (a mapping of names to tensors)"
    for key, value in state.items():
        if not isinstance(key, str):
            return "it is a mapping whose keys are not all names (not a state dict)"
        if not isinstance(value, _Tensor):
            kind = "mapping" if isinstance(value, dict) else type(value).__name__
            return (f"its entry {shown(key)!r} is a {kind}, not a tensor (a checkpoint? save "
                    "net.state_dict() alone)")
        problem = _layout_problem(shown(key), value, sizes, prefix)
        if problem:
            return problem
    return ""
