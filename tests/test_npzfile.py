"""The targets' byte format: our zip writer makes exactly zipfile's container, deflated by zlib-ng."""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.store import npzfile
from notewise.store.npzfile import (inflate, member_data, npy_bytes, npy_from_buffer, npz_bytes,
                                   npz_members)

MEMBERS = {
    "confs": np.linspace(0, 1, 600, dtype=np.float32).astype(np.float16).reshape(20, 30),
    "energies": np.zeros((20, 30), np.float16),
    "note_sample": np.arange(7, dtype=np.int32),
    "empty": np.zeros(0, np.int8),
    "waveforms_crc32": np.array(0xDEADBEEF, np.uint32),  # 0-d
}


def zipfile_npz(members, compresslevel):
    """The same archive written by the stdlib (the writer the format was first defined by)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", allowZip64=True) as archive:
        for name, array in members.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=npzfile.ZIP_DATE_TIME)
            info.create_system, info.external_attr = 3, 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED if compresslevel == 0 else zipfile.ZIP_DEFLATED
            info._compresslevel = compresslevel or None
            with archive.open(info, "w", force_zip64=True) as fh:
                fh.write(npy_bytes(array))
    return buffer.getvalue()


def zlib_deflate(payload, level):
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return b"".join([compressor.compress(part) for part in payload] + [compressor.flush()])


@pytest.mark.parametrize("compresslevel", [0, 1, 3])
def test_the_container_is_zipfiles_byte_for_byte(monkeypatch, compresslevel):
    """With the stdlib's deflate swapped in, every byte equals what zipfile writes."""
    monkeypatch.setattr(npzfile, "deflate", zlib_deflate)
    assert npz_bytes(MEMBERS, compresslevel) == zipfile_npz(MEMBERS, compresslevel)


@pytest.mark.parametrize("compresslevel", [0, 1, 6, 9])
def test_numpy_and_zipfile_read_what_zlib_ng_deflates(compresslevel):
    raw = npz_bytes(MEMBERS, compresslevel)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        assert archive.testzip() is None  # every CRC checked by the stdlib
        infos = archive.infolist()
    with np.load(io.BytesIO(raw)) as npz:
        for name, array in MEMBERS.items():
            np.testing.assert_array_equal(npz[name], array)
            assert npz[name].dtype == array.dtype and npz[name].shape == array.shape
    for info in infos:  # direct member access (the readers' path) agrees
        assert bytes(member_data(memoryview(raw), info)) == npy_bytes(MEMBERS[info.filename[:-4]])
    assert npz_members(raw).keys() == MEMBERS.keys()
    if compresslevel:
        assert infos[0].compress_size < infos[0].file_size


def test_a_damaged_deflate_stream_raises_zlib_error():
    raw = npzfile.deflate([b"abc" * 1000], 1)
    with pytest.raises(zlib.error):
        inflate(raw[:5] + b"\xff" * 8, 3000)


def test_bad_compresslevels_and_huge_members_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="compresslevel must be 0 .stored. to 9"):
        npz_bytes(MEMBERS, 10)
    monkeypatch.setattr(npzfile, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(ValueError, match="confs.npy: 1328 bytes .* above 4 GiB"):
        npz_bytes(MEMBERS, 0)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.float32, np.float16, np.int8, np.uint32, np.int64]),
       st.lists(st.integers(0, 5), max_size=3))
def test_npy_bytes_are_np_saves_and_parse_back(dtype, shape):
    array = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    expected = io.BytesIO()
    np.save(expected, array)
    assert npy_bytes(array) == expected.getvalue()
    parsed = npy_from_buffer(npy_bytes(array))
    assert parsed.dtype == array.dtype and parsed.shape == array.shape
    np.testing.assert_array_equal(parsed, array)


def test_truncated_npy_bytes_are_detected():
    data = npy_bytes(np.ones((4, 8), np.float32))
    with pytest.raises(ValueError, match="truncated"):
        npy_from_buffer(data[:-10])
    with pytest.raises(ValueError, match="trailing"):
        npy_from_buffer(data + b"\0" * 4)
