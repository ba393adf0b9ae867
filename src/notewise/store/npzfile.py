"""The byte format of the targets ``.npz``: ``.npy`` members in a reproducible zip container.

A standard ``.npz`` (``np.load`` and ``zipfile`` read it) written by our own few lines instead of
``zipfile``, for one reason: ``zipfile`` can only deflate and checksum with the stdlib ``zlib``,
and zlib-ng (``zlib_ng``) deflates about three times and checksums about seven times faster,
which matters when the targets of a shard are written as fast as the windows are synthesised
(``bench/bench_writes.py``). Its level-1 streams inflate as fast as zlib's own; ISA-L deflates
faster still, but the stdlib then inflates its streams 2.5x slower, and a dataset is read many
more times than it is written. The container is
byte for byte what ``zipfile`` writes for the same member data (``tests/test_npzfile.py`` checks
it): per member a local header with a zip64 extra field (sizes in the extra), the data, then the
central directory and the end record. Every field is fixed (date 1980-01-01, unix attributes
0644, member order as given), so identical arrays give identical bytes.

The record layouts are defined here once and used by the writer, the reader's direct member
access (``notewise.loading.reader``) and validation's container check (``notewise.store.validate``).
"""
from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from typing import Mapping

import numpy as np
from zlib_ng import zlib_ng

#: Fixed zip member timestamp (the earliest a zip can hold) so that files are reproducible.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
DOS_DATE = (ZIP_DATE_TIME[0] - 1980) << 9 | ZIP_DATE_TIME[1] << 5 | ZIP_DATE_TIME[2]
DOS_TIME = 0
UNIX_SYSTEM, FILE_ATTRIBUTES = 3, 0o644 << 16
ZIP64_VERSION = 45  # "version needed to extract" of a member with a zip64 extra field
DEFLATED, STORED = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
#: The compress levels: 0 stores the members, 1-9 deflate them at that zlib-ng level. Level 1 is
#: the default of every writer (bench/bench_writes.py: level 2+ inflate 5x slower).
DEFAULT_COMPRESSLEVEL, MAX_COMPRESSLEVEL = 1, 9
MAX_MEMBER_BYTES = 0xFFFFFFFE  # beyond this the central directory would need zip64 fields too

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # local file header, 30 bytes
ZIP64_EXTRA = struct.Struct("<HHQQ")  # id 1, size 16, uncompressed size, compressed size
CENTRAL_HEADER = struct.Struct(zipfile.structCentralDir)  # central directory entry, 46 bytes
END_RECORD = struct.Struct("<4sHHHHIIH")  # end of central directory record, 22 bytes

crc32 = zlib_ng.crc32  # same values as zlib.crc32


# --------------------------------------------------------------------------- .npy


def c_order(array) -> np.ndarray:
    """``array`` C-contiguous, keeping 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return np.require(array, requirements="C")


def npy_header(shape: tuple[int, ...], dtype) -> bytes:
    """The ``.npy`` header ``np.save`` writes for a C-order array of ``shape`` and ``dtype``
    (format 1.0)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
        "shape": tuple(int(n) for n in shape)})
    return header.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` file bytes, identical to what ``np.save`` writes."""
    array = c_order(array)
    return npy_header(array.shape, array.dtype) + array.tobytes()


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def read_npy_header(stream) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the ``.npy`` header at the stream's position."""
    version = np.lib.format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version}")
    return _HEADER_READERS[version](stream)


def npy_from_buffer(buffer: bytes | memoryview) -> np.ndarray:
    """Parse ``.npy`` bytes without copying the data (the result is read-only).

    Raises ``ValueError`` when the header is malformed or the data is shorter or longer than the
    header says (a truncated file), which ``np.frombuffer`` alone would not notice.
    """
    stream = io.BytesIO(buffer)
    shape, fortran_order, dtype = read_npy_header(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed in shards")
    offset = stream.tell()
    count = math.prod(shape)
    expected, found = count * dtype.itemsize, len(buffer) - offset
    if found != expected:
        raise ValueError(f"array data is {found} bytes, header {shape} {dtype} needs {expected}"
                         f" ({'truncated' if found < expected else 'trailing bytes'})")
    array = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran_order else "C")


# --------------------------------------------------------------------------- deflate


def deflate(payload: list, level: int) -> bytes:
    """One raw deflate stream of the concatenated bytes-likes in ``payload``, at zlib-ng
    ``level`` (1-9)."""
    compressor = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -zlib_ng.MAX_WBITS)
    return b"".join([compressor.compress(part) for part in payload] + [compressor.flush()])


def inflate(data, size: int) -> bytes:
    """The bytes a raw deflate stream holds (``size``: their expected count, a buffer hint).
    The stdlib's zlib: on these mostly-zero targets it inflates faster than zlib-ng or ISA-L."""
    return zlib.decompress(data, -zlib.MAX_WBITS, max(size, 1))


def check_compresslevel(compresslevel: int) -> None:
    if not 0 <= compresslevel <= MAX_COMPRESSLEVEL:
        raise ValueError(f"compresslevel must be 0 (stored) to {MAX_COMPRESSLEVEL}"
                         f" (zlib-ng deflate levels), got {compresslevel}")


# --------------------------------------------------------------------------- zip container


def local_header(name: bytes, method: int, crc: int, size: int, compressed_size: int) -> bytes:
    """A member's local header as the writer makes it: sizes in a zip64 extra field."""
    return (LOCAL_HEADER.pack(b"PK\x03\x04", ZIP64_VERSION, 0, method, DOS_TIME, DOS_DATE, crc,
                              0xFFFFFFFF, 0xFFFFFFFF, len(name), ZIP64_EXTRA.size)
            + name + ZIP64_EXTRA.pack(1, 16, size, compressed_size))


def central_entry(name: bytes, method: int, crc: int, size: int, compressed_size: int,
                  offset: int) -> bytes:
    """A member's central directory entry as the writer makes it."""
    return CENTRAL_HEADER.pack(b"PK\x01\x02", ZIP64_VERSION, UNIX_SYSTEM, ZIP64_VERSION, 0, 0,
                               method, DOS_TIME, DOS_DATE, crc, compressed_size, size, len(name),
                               0, 0, 0, 0, FILE_ATTRIBUTES, offset) + name


def end_record(entries: int, directory_size: int, directory_offset: int) -> bytes:
    return END_RECORD.pack(b"PK\x05\x06", 0, 0, entries, entries, directory_size,
                           directory_offset, 0)


def _member(name: bytes, payload: list, compresslevel: int, offset: int) -> tuple[bytes, bytes, bytes]:
    """(local header, stored data, central directory entry) of one member whose uncompressed
    bytes are the concatenation of the bytes-likes in ``payload``."""
    size = sum(memoryview(part).nbytes for part in payload)
    crc = 0
    for part in payload:
        crc = crc32(part, crc)
    method = STORED if compresslevel == 0 else DEFLATED
    data = b"".join(payload) if method == STORED else deflate(payload, compresslevel)
    if max(size, len(data), offset) > MAX_MEMBER_BYTES:
        raise ValueError(f"{name.decode()}: {size} bytes at offset {offset}; members and offsets"
                         f" above 4 GiB are not supported (write smaller shards)")
    return (local_header(name, method, crc, size, len(data)), data,
            central_entry(name, method, crc, size, len(data), offset))


def npz_bytes(members: Mapping[str, np.ndarray], compresslevel: int = DEFAULT_COMPRESSLEVEL) -> bytes:
    """A standard ``.npz`` (zip of ``.npy`` members, in the given order), byte-reproducible.

    ``compresslevel`` 0 stores the members; 1-9 deflate them at that zlib-ng level.
    """
    check_compresslevel(compresslevel)
    parts, directory, offset = [], [], 0
    for name, array in members.items():
        array = c_order(array)
        payload = [npy_header(array.shape, array.dtype), memoryview(array.reshape(-1)).cast("B")]
        local, data, central = _member(f"{name}.npy".encode(), payload, compresslevel, offset)
        parts += [local, data]
        directory.append(central)
        offset += len(local) + len(data)
    directory_bytes = b"".join(directory)
    return b"".join(parts) + directory_bytes + end_record(len(directory), len(directory_bytes), offset)


def member_data(buffer: memoryview, info: zipfile.ZipInfo, verify: bool = False) -> bytes | memoryview:
    """A zip member's uncompressed bytes, found through its local header, without
    ``zipfile``'s CRC pass (stored members: zero-copy). For readers that trust the file;
    validation checks every CRC, and so does ``verify=True`` (zlib-ng's CRC-32)."""
    fields = LOCAL_HEADER.unpack_from(buffer, info.header_offset)
    signature, name_length, extra_length = fields[0], fields[-2], fields[-1]
    if signature != b"PK\x03\x04":
        raise ValueError(f"bad zip local header for {info.filename}")
    start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
    raw = buffer[start: start + info.compress_size]
    if info.compress_type == STORED:
        return _checked(raw, info) if verify else raw
    if info.compress_type != DEFLATED:
        raise ValueError(f"{info.filename} uses zip compression {info.compress_type}")
    data = inflate(raw, info.file_size)
    if len(data) != info.file_size:
        raise ValueError(f"{info.filename} inflates to {len(data)} bytes, not {info.file_size}")
    return _checked(data, info) if verify else data


def _checked(data, info: zipfile.ZipInfo):
    actual = crc32(data)
    if actual != info.CRC:
        raise ValueError(f"{info.filename}: CRC-32 {actual:08x}, the zip recorded {info.CRC:08x}")
    return data


def npz_members(buffer: bytes, source: str = "<bytes>") -> dict[str, np.ndarray]:
    """Every member of ``.npz`` bytes (CRC-checked by ``zipfile``), keyed without ``.npy``."""
    with zipfile.ZipFile(io.BytesIO(buffer)) as archive:
        names = archive.namelist()
        if len(set(names)) != len(names):
            raise ValueError(f"{source}: duplicate zip members")
        return {name.removesuffix(".npy"): npy_from_buffer(archive.read(name)) for name in names}
