"""MultiVectorIndex: build / add / properties, the file format, mmap loading and failure modes."""
import os
import struct

import pytest
import torch

import colkern
from colkern.retrieval.index import IndexFormatError, MultiVectorIndex
from colkern.retrieval.index_format import FORMAT_VERSION, MAGIC

DIM = 20  # not a multiple of 8: exercises the padding bits


def _docs(n=12, dim=DIM, seed=0, lo=0, hi=9):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(int(torch.randint(lo, hi, (1,), generator=g)), dim, generator=g) for _ in range(n)]


def _assert_same(a: MultiVectorIndex, b: MultiVectorIndex):
    assert a.dim == b.dim and a.num_docs == b.num_docs and a.num_vectors == b.num_vectors
    assert a.attrs == b.attrs
    assert a.ids == b.ids
    assert torch.equal(a.offsets, b.offsets) and a.offsets.dtype == torch.int64
    assert torch.equal(a.bits, b.bits) and a.bits.dtype == torch.uint8
    assert (a.floats is None) == (b.floats is None)
    if a.floats is not None:
        assert a.floats.dtype == b.floats.dtype
        assert torch.equal(a.floats.view(torch.uint8), b.floats.view(torch.uint8))


@pytest.fixture
def saved(tmp_path):
    idx = MultiVectorIndex.build(_docs(), ids=[f"doc-{i:02d}" for i in range(12)],
                                 attrs={"model": "/m/\u00fc", "dpi": 144, "nested": {"a": [1, 2.5, None]}})
    path = tmp_path / "corpus.colk"
    idx.save(path)
    return idx, str(path)


# -- build / add / properties -------------------------------------------------------------------


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_build_properties(float_dtype):
    docs = _docs()
    idx = MultiVectorIndex.build(docs, float_dtype=float_dtype)
    packed = colkern.pack(docs)
    T = packed.values.shape[0]
    assert idx.num_docs == len(idx) == 12 and idx.num_vectors == T and idx.dim == DIM
    assert idx.ids == [str(i) for i in range(12)]
    assert torch.equal(idx.offsets, packed.offsets)
    assert torch.equal(idx.bits, colkern.pack_bits(packed.values))
    assert idx.floats.dtype == float_dtype and torch.equal(idx.floats, packed.values.to(float_dtype))
    esize = torch.empty(0, dtype=float_dtype).element_size()
    assert idx.bits_bytes_per_vector == 3 and idx.float_bytes_per_vector == DIM * esize
    assert idx.bytes_per_vector == 3 + DIM * esize
    assert idx.nbytes == T * (3 + DIM * esize) + 13 * 8
    assert idx.has_float and idx.float_dtype == float_dtype


def test_build_bits_only_and_packed_input():
    docs = _docs()
    idx = MultiVectorIndex.build(colkern.pack(docs), keep_float=False)
    assert idx.floats is None and not idx.has_float and idx.float_dtype is None
    assert idx.bytes_per_vector == idx.bits_bytes_per_vector == 3 and idx.float_bytes_per_vector == 0
    assert idx.nbytes == idx.num_vectors * 3 + 13 * 8
    assert torch.equal(idx.bits, MultiVectorIndex.build(docs).bits)
    with pytest.raises(ValueError, match="no float vectors"):
        idx.packed_floats()


def test_ids_validation():
    docs = _docs(3)
    with pytest.raises(ValueError, match="unique.*'a'"):
        MultiVectorIndex.build(docs, ids=["a", "b", "a"])
    with pytest.raises(ValueError, match="2 ids for 3 documents"):
        MultiVectorIndex.build(docs, ids=["a", "b"])
    with pytest.raises(TypeError, match="str"):
        MultiVectorIndex.build(docs, ids=["a", 1, "c"])
    with pytest.raises(TypeError, match="single str"):
        MultiVectorIndex.build(docs, ids="abc")
    idx = MultiVectorIndex.build(docs, ids=["x", "y", "z"])
    assert idx.index_of("y") == 1
    with pytest.raises(KeyError):
        idx.index_of("nope")


def test_build_input_errors():
    with pytest.raises(ValueError, match="empty"):
        MultiVectorIndex.build([])
    with pytest.raises(TypeError, match="single tensor"):
        MultiVectorIndex.build(torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match="float"):
        MultiVectorIndex.build([torch.ones(3, 8, dtype=torch.int32)])
    with pytest.raises(ValueError, match="float_dtype"):
        MultiVectorIndex.build(_docs(2), float_dtype=torch.float64)


def test_add_equals_build_of_all():
    a, b = _docs(7, seed=1), _docs(5, seed=2)
    idx = MultiVectorIndex.build(a)
    assert idx.add(b) is idx
    _assert_same(idx, MultiVectorIndex.build(a + b))
    idx.add(colkern.pack(_docs(2, seed=3)), ids=["p", "q"])
    assert idx.ids[-3:] == ["11", "p", "q"] and idx.num_docs == 14
    with pytest.raises(ValueError, match="unique.*'p'"):
        idx.add(_docs(1), ids=["p"])
    with pytest.raises(ValueError, match="dim 7 but the index has dim 20"):
        idx.add([torch.randn(3, 7)])
    assert idx.num_docs == 14  # failed adds change nothing
    bits_only = MultiVectorIndex.build(a, keep_float=False).add(b)
    assert bits_only.floats is None and torch.equal(bits_only.bits, MultiVectorIndex.build(a + b).bits)


def test_concat_equals_build_of_all():
    a, b, c = _docs(4, seed=1), _docs(3, seed=2), _docs(2, seed=3)
    parts = [MultiVectorIndex.build(x, ids=[f"{tag}{i}" for i in range(len(x))], attrs={"part": tag})
             for x, tag in ((a, "a"), (b, "b"), (c, "c"))]
    whole = MultiVectorIndex.concat(parts)
    _assert_same(whole, MultiVectorIndex.build(a + b + c, ids=[i for p in parts for i in p.ids],
                                               attrs={"part": "a"}))
    assert whole.attrs == {"part": "a"}
    assert MultiVectorIndex.concat(parts, attrs={"x": 1}).attrs == {"x": 1}
    with pytest.raises(ValueError, match="unique"):
        MultiVectorIndex.concat([parts[0], parts[0]])
    with pytest.raises(ValueError, match=r"indexes\[1\] holds floats None"):
        MultiVectorIndex.concat([parts[0], MultiVectorIndex.build(b, keep_float=False)])
    with pytest.raises(ValueError, match=r"indexes\[1\] has dim 7"):
        MultiVectorIndex.concat([parts[0], MultiVectorIndex.build([torch.randn(2, 7)])])
    with pytest.raises(ValueError, match="non-empty"):
        MultiVectorIndex.concat([])


def test_attrs_validation():
    with pytest.raises(TypeError, match="attrs must be a dict"):
        MultiVectorIndex.build(_docs(2), attrs=["x"])
    with pytest.raises(ValueError, match="JSON-serialisable"):
        MultiVectorIndex.build(_docs(2), attrs={"t": torch.zeros(1)})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        MultiVectorIndex.build(_docs(2), attrs={"nan": float("nan")})
    assert MultiVectorIndex.build(_docs(2)).attrs == {}


# -- save / load round trips --------------------------------------------------------------------


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float16, torch.bfloat16, None])
@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip(tmp_path, float_dtype, mmap):
    docs = _docs(lo=0)  # some empty documents
    ids = [f"página {i} \u2603 \"quoted\"" for i in range(len(docs))]  # non-ASCII and JSON escapes
    idx = MultiVectorIndex.build(docs, ids=ids, keep_float=float_dtype is not None,
                                 float_dtype=float_dtype or torch.float16,
                                 attrs={"model": "/m/\u00fc", "dpi": 144, "nested": {"a": [1, 2.5, None]}})
    path = tmp_path / "idx.colk"
    idx.save(path)
    with open(path, "rb") as f:
        head = f.read(16)
    assert head[:8] == MAGIC == b"COLKIDX1" and struct.unpack("<I", head[8:12])[0] == FORMAT_VERSION
    back = MultiVectorIndex.load(path, mmap=mmap)
    _assert_same(idx, back)
    assert back.is_mmap == mmap and back.path == str(path)
    assert back.attrs["nested"] == {"a": [1, 2.5, None]}
    # arrays are 64-byte aligned in the file (hence in the mapping)
    for t in (back.bits, back.offsets, back.floats):
        if t is not None and t.numel():
            assert t.data_ptr() % 64 == 0


def test_round_trip_all_empty_docs(tmp_path):
    idx = MultiVectorIndex.build([torch.empty(0, 9), torch.empty(0, 9)])
    assert idx.num_vectors == 0 and idx.num_docs == 2
    idx.save(tmp_path / "e.colk")
    for mmap in (False, True):
        _assert_same(idx, MultiVectorIndex.load(tmp_path / "e.colk", mmap=mmap))


def _mapping_of(addr):
    """(permissions, path) of the /proc/self/maps line holding addr."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                return parts[1], parts[5] if len(parts) > 5 else ""
    return None, None


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc/self/maps")
def test_mmap_load_is_file_backed_and_read_only(saved):
    idx, path = saved
    mm = MultiVectorIndex.load(path, mmap=True)
    for t in (mm.bits, mm.floats, mm.offsets):
        perms, backing = _mapping_of(t.data_ptr())
        assert backing == os.path.realpath(path), "tensor does not view the file mapping (copied?)"
        assert "w" not in perms, f"mapping is writable: {perms}"
    # a normal load owns anonymous memory instead
    normal = MultiVectorIndex.load(path)
    assert _mapping_of(normal.bits.data_ptr())[1] != os.path.realpath(path)
    _assert_same(mm, normal)
    Q = torch.randn(2, 4, DIM)
    assert torch.equal(colkern.maxsim(Q, mm.packed_floats()), colkern.maxsim(Q, normal.packed_floats()))
    assert torch.equal(colkern.maxsim_hamming(colkern.pack_bits(Q), mm.packed_bits(), dim=DIM),
                       colkern.maxsim_hamming(colkern.pack_bits(Q), normal.packed_bits(), dim=DIM))


def test_save_over_mapped_file_keeps_old_mapping_valid(saved):
    idx, path = saved
    mm = MultiVectorIndex.load(path, mmap=True)
    MultiVectorIndex.build(_docs(4, seed=9)).save(path)  # replaces the file under the mapping
    _assert_same(mm, idx)  # the mapped index still reads the old inode
    assert MultiVectorIndex.load(path).num_docs == 4


# -- corrupt files ------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated(saved, mmap):
    _, path = saved
    data = open(path, "rb").read()
    meta_len = struct.unpack("<Q", data[16:24])[0]
    for size in (3, 8, 20, 24 + meta_len // 2, 24 + meta_len + 1, len(data) // 2, len(data) - 1):
        with open(path, "wb") as f:
            f.write(data[:size])
        with pytest.raises(IndexFormatError, match="truncated") as e:
            MultiVectorIndex.load(path, mmap=mmap)
        assert path in str(e.value)


def test_trailing_bytes(saved):
    _, path = saved
    with open(path, "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(IndexFormatError, match="10 unexpected trailing bytes"):
        MultiVectorIndex.load(path)


@pytest.mark.parametrize("version", [0, 2, 7])
def test_wrong_version(saved, version):
    _, path = saved
    data = bytearray(open(path, "rb").read())
    data[8:12] = struct.pack("<I", version)
    open(path, "wb").write(bytes(data))
    with pytest.raises(IndexFormatError, match=f"version {version}.*reads version {FORMAT_VERSION}") as e:
        MultiVectorIndex.load(path, mmap=True)
    assert path in str(e.value)


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + bytes(64),   # a PNG
    bytes(range(256)) * 4,                                  # random-ish bytes
    b"COLKIDX",                                             # 7 bytes, not the magic... but its prefix
    b"",                                                    # empty file
    b"PK\x03\x04",                                          # a zip (e.g. a torch.save file)
])
def test_foreign_file(tmp_path, content):
    path = str(tmp_path / "foreign.bin")
    open(path, "wb").write(content)
    expect = "truncated" if content == b"COLKIDX" else "not a colkern index file"
    with pytest.raises(IndexFormatError, match=expect) as e:
        MultiVectorIndex.load(path)
    assert path in str(e.value)
    assert isinstance(e.value, ValueError)


def test_torch_save_file_is_foreign(tmp_path):
    path = str(tmp_path / "t.pt")
    torch.save({"x": torch.ones(3)}, path)
    with pytest.raises(IndexFormatError, match="not a colkern index file"):
        MultiVectorIndex.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.colk"):
        MultiVectorIndex.load(tmp_path / "nope.colk")


@pytest.mark.parametrize("where", ["last", "first_payload", "middle"])
def test_checksum_mismatch(saved, where):
    idx, path = saved
    data = bytearray(open(path, "rb").read())
    meta_len = struct.unpack("<Q", data[16:24])[0]
    payload = (24 + meta_len + 63) // 64 * 64
    pos = {"last": len(data) - 1, "first_payload": payload + 8, "middle": (payload + len(data)) // 2}[where]
    data[pos] ^= 0x01
    open(path, "wb").write(bytes(data))
    for mmap in (False, True):
        with pytest.raises(IndexFormatError, match="checksum") as e:
            MultiVectorIndex.load(path, mmap=mmap)
        assert path in str(e.value)
    # verify=False skips the checksum pass of an mmap load (documented for huge indexes)
    assert MultiVectorIndex.load(path, mmap=True, verify=False).num_docs == idx.num_docs


def test_checksum_covers_ids(saved):
    _, path = saved
    data = open(path, "rb").read()
    assert data.count(b'"doc-03"') == 1
    open(path, "wb").write(data.replace(b'"doc-03"', b'"doc-33"'))
    with pytest.raises(IndexFormatError, match="checksum"):
        MultiVectorIndex.load(path)


def test_corrupt_metadata(saved):
    _, path = saved
    data = bytearray(open(path, "rb").read())
    data[30] = ord("{")  # breaks the JSON
    open(path, "wb").write(bytes(data))
    with pytest.raises(IndexFormatError, match="corrupt"):
        MultiVectorIndex.load(path)


# -- atomic save --------------------------------------------------------------------------------


def _check_intact(path, old):
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)], "temporary file left behind"
    _assert_same(MultiVectorIndex.load(path), old)


def test_atomic_save_replace_fails(saved, monkeypatch):
    old, path = saved
    new = MultiVectorIndex.build(_docs(30, seed=5))

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        new.save(path)
    monkeypatch.undo()
    _check_intact(path, old)


def test_atomic_save_write_fails_midway(saved, monkeypatch):
    old, path = saved
    import colkern.retrieval.index_format as mod

    real = mod._write_chunks
    calls = []

    def fail_on_second_array(f, t, h):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"partial" * 100)
            raise RuntimeError("writer died")
        real(f, t, h)

    monkeypatch.setattr(mod, "_write_chunks", fail_on_second_array)
    with pytest.raises(RuntimeError, match="writer died"):
        MultiVectorIndex.build(_docs(30, seed=6)).save(path)
    monkeypatch.undo()
    _check_intact(path, old)


def test_atomic_save_interrupted(saved, monkeypatch):
    old, path = saved
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        MultiVectorIndex.build(_docs(3, seed=7)).save(path)
    monkeypatch.undo()
    _check_intact(path, old)


def test_save_new_file_mode(tmp_path):
    path = tmp_path / "m.colk"
    MultiVectorIndex.build(_docs(2)).save(path)
    assert os.stat(path).st_mode & 0o777 == 0o644
    os.chmod(path, 0o640)
    MultiVectorIndex.build(_docs(3)).save(path)
    assert os.stat(path).st_mode & 0o777 == 0o640
