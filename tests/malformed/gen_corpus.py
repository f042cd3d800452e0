#!/usr/bin/env python3
"""Writes the malformed-file corpus and its manifest (cases.txt).

Every bad file is derived from a valid one by one change, so each tests exactly one check of
the reader. The .kir files are written here by an independent implementation of the format
documented at the top of ir/kir.c (so the corpus also checks that the reader reads what the
documentation says); the valid .npy files are written by numpy itself. Run from anywhere:
    python3 tests/malformed/gen_corpus.py
and commit the files it writes. The runner (run_malformed.c) checks each file against the
expected status code and message substring in cases.txt.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = []  # (relative path, code, substring)


def out(rel, data, code, substring=""):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    CASES.append((rel, code, substring))


# ---- .kir -----------------------------------------------------------------------------------

HEADER_SIZE = 256
MASK = (1 << 64) - 1
DTYPE_CODES = {"f32": 0, "f16": 1, "bf16": 2, "f64": 3, "i8": 4, "u8": 5, "i32": 6, "i64": 7,
               "bool": 8}


def kir_checksum(body):
    h = 0x6B696C6E2E6B6972
    padded = body + b"\0" * (-len(body) % 8)
    for (w,) in struct.iter_unpack("<Q", padded):
        h = ((h ^ w) * 0x9E3779B97F4A7C15) & MASK
        h ^= h >> 29
    h = ((h ^ len(body)) * 0x9E3779B97F4A7C15) & MASK
    h ^= h >> 29
    return h


def align(n, a):
    return (n + a - 1) // a * a


class Blob:
    def __init__(self, name, dtype, dims, data, offset=None, nbytes=None, rank=None,
                 reserved=0, code=None, place=True):
        self.name, self.dtype, self.dims, self.data = name, dtype, dims, data
        self.offset, self.nbytes, self.rank, self.place = offset, nbytes, rank, place
        self.reserved, self.code = reserved, code


def kir_file(text, blobs, version=1, fix=None):
    """A .kir file; fix(fields) may change header fields before the checksum is taken."""
    text = text.encode()
    dir_ = struct.pack("<Q", len(blobs))
    data = b""
    for b in blobs:
        off = align(len(data), 64) if b.offset is None else b.offset
        if b.offset is None:
            data += b"\0" * (off - len(data)) + b.data
        elif b.place:  # at the given offset, over whatever is there
            data = data.ljust(off + len(b.data), b"\0")
            data = data[:off] + b.data + data[off + len(b.data):]
        name = b.name.encode()
        dir_ += struct.pack("<IIIIQQ",
                            DTYPE_CODES[b.dtype] if b.code is None else b.code,
                            len(b.dims) if b.rank is None else b.rank,
                            len(name), b.reserved, off,
                            len(b.data) if b.nbytes is None else b.nbytes)
        dir_ += b"".join(struct.pack("<q", d) for d in b.dims)
        dir_ += name + b"\0" * (-len(name) % 8)
    data += b"\0" * (-len(data) % 64)
    f = {"text": [HEADER_SIZE, len(text)]}
    f["dir"] = [align(HEADER_SIZE + len(text), 8), len(dir_)]
    f["data"] = [align(f["dir"][0] + len(dir_), 64), len(data)]
    body = text + b"\0" * (f["dir"][0] - HEADER_SIZE - len(text)) + dir_
    body += b"\0" * (f["data"][0] - HEADER_SIZE - len(body)) + data
    if fix:
        fix(f)
    line = "KILNIR %d text=%d+%d dir=%d+%d data=%d+%d sum=" % (
        version, f["text"][0], f["text"][1], f["dir"][0], f["dir"][1], f["data"][0],
        f["data"][1])
    line += "%016x" % f.get("sum", kir_checksum(line.encode() + body))
    header = line.encode().ljust(HEADER_SIZE - 1) + b"\n"
    return header + body


def floats(n, scale=1.0):
    return struct.pack("<%df" % n, *[i * scale for i in range(n)])


GRAPH = """graph(%x : Float(4, 5)):
  %w : Float(5, 5) = prim::Param[name="w"]()
  %1 : Float(4, 5) = aten::matmul(%x, %w)
  %c : Float(4, 5) = prim::Constant[value=Float(4, 5){@1}]()
  %2 : Float(4, 5) = aten::add(%1, %c)
  return (%2)
"""


def good_blobs():
    return [Blob("w", "f32", [5, 5], floats(25, 0.5)), Blob("", "f32", [4, 5], floats(20, -1.0))]


def kir_corpus():
    out("valid/net.kir", kir_file(GRAPH, good_blobs()), "ok")
    valid = kir_file(GRAPH, good_blobs())
    out("kir/bad_magic.kir", b"KILNIX" + valid[6:], "format", "bad magic")
    out("kir/empty.kir", b"", "format", "bad magic")
    out("kir/truncated_header.kir", valid[:100], "format", "truncated header")
    out("kir/truncated_data.kir", valid[:-64], "format", "runs past the end of the file")
    out("kir/version_too_new.kir", kir_file(GRAPH, good_blobs(), version=2), "version",
        "written by a newer kiln: format version 2, this kiln reads up to 1")
    out("kir/version_zero.kir", kir_file(GRAPH, good_blobs(), version=0), "format",
        "version 0")

    def data_past_end(f):
        f["data"][1] += 4096
    out("kir/offset_past_end.kir", kir_file(GRAPH, good_blobs(), fix=data_past_end), "format",
        "data section (offset")

    def huge_dir(f):  # offset + size overflows 64 bits
        f["dir"] = [9999999999999999992, 9999999999999999999]
    out("kir/offset_overflow.kir", kir_file(GRAPH, good_blobs(), fix=huge_dir), "format",
        "runs past the end of the file")

    def swap_sections(f):
        f["dir"][0] = f["text"][0]
    out("kir/sections_overlap.kir", kir_file(GRAPH, good_blobs(), fix=swap_sections), "format",
        "overlaps the section before it")
    out("kir/stray_bytes.kir", valid + b"\0" * 64, "format", "stray bytes")

    corrupt = bytearray(valid)
    corrupt[-100] ^= 0x40
    out("kir/checksum.kir", bytes(corrupt), "format", "checksum mismatch")

    b = good_blobs()
    b[1].offset = 64  # inside blob 0's 100 bytes
    out("kir/overlap.kir", kir_file(GRAPH, b), "format", "overlap")
    b = good_blobs()
    b[1].offset = 4096
    b[1].place = False
    out("kir/blob_past_end.kir", kir_file(GRAPH, b), "format",
        "runs past the end of the data section")
    b = good_blobs()
    b[1].offset = 136
    out("kir/blob_unaligned.kir", kir_file(GRAPH, b), "format", "not aligned to 64")
    b = good_blobs()
    b[0].nbytes = 96
    out("kir/blob_size.kir", kir_file(GRAPH, b), "format", "does not match its shape")
    b = good_blobs()
    b[1].dims = [1 << 62, 1 << 62]
    b[1].nbytes = 80
    out("kir/dims_overflow.kir", kir_file(GRAPH, b), "format", "element count overflows")
    b = good_blobs()
    b[1].dims = [1000000, 1000000]
    out("kir/huge_shape.kir", kir_file(GRAPH, b), "format",
        "does not match its shape Float(1000000, 1000000) (4000000000000 bytes)")
    b = good_blobs()
    b[1].dims = [65536, 65536]
    out("kir/dims_int32_overflow.kir", kir_file(GRAPH, b), "format",
        "does not match its shape Float(65536, 65536) (17179869184 bytes)")
    b = good_blobs()
    b[1].dims = [4, -5]
    out("kir/negative_dim.kir", kir_file(GRAPH, b), "format", "negative")
    b = good_blobs()
    b[1].dims = [1] * 33
    out("kir/rank_over_32.kir", kir_file(GRAPH, b), "format", "rank 33 is over the limit of 32")
    b = good_blobs()
    b[1].code = 99
    out("kir/bad_dtype.kir", kir_file(GRAPH, b), "format", "unknown dtype code 99")
    b = good_blobs()
    b[1].reserved = 7
    out("kir/reserved.kir", kir_file(GRAPH, b), "format", "reserved field")
    b = good_blobs()
    b[1].name = "w"
    out("kir/duplicate_name.kir", kir_file(GRAPH, b), "format", "two blobs are named \"w\"")
    b = good_blobs()
    b[0].name = "a\0b"
    out("kir/name_nul.kir", kir_file(GRAPH, b), "format", "NUL")

    bad_count = bytearray(valid)
    dir_off = int(valid[:HEADER_SIZE].split(b"dir=")[1].split(b"+")[0])
    bad_count[dir_off:dir_off + 8] = struct.pack("<Q", 1 << 40)
    # re-checksum so that the count is what fails
    body = bytes(bad_count[HEADER_SIZE:])
    summed = valid[:valid.index(b"sum=") + 4]
    hdr = valid[:HEADER_SIZE].replace(b"sum=%016x" % kir_checksum(summed + valid[HEADER_SIZE:]),
                                      b"sum=%016x" % kir_checksum(summed + body))
    assert hdr != valid[:HEADER_SIZE]
    out("kir/dir_count.kir", hdr + body, "format", "has room for at most")

    b = good_blobs()
    b[0] = Blob("w", "f32", [5, 4], floats(20, 0.5))
    out("kir/param_shape.kir", kir_file(GRAPH, b), "format",
        "prim::Param \"w\" (%w) is declared Float(5, 5) but its blob is Float(5, 4)")
    out("kir/ref_out_of_range.kir", kir_file(GRAPH.replace("{@1}", "{@7}"), good_blobs()),
        "format", "{@7}: index out of range, the file has 2 blobs")
    b = good_blobs()
    b[1] = Blob("", "f32", [5, 4], floats(20))
    out("kir/ref_wrong_type.kir", kir_file(GRAPH, b), "format",
        "{@1}: written as Float(4, 5) but blob 1 is Float(5, 4)")
    out("kir/bad_text.kir",
        kir_file(GRAPH.replace("aten::matmul", "aten::frobnicate"), good_blobs()), "format",
        "text section is not valid IR")
    out("kir/binary_text.kir", kir_file("\x01\x02graph(\n", good_blobs()), "format",
        "text section is not valid IR")


# ---- .npy -----------------------------------------------------------------------------------

def npy_raw(dict_text, data, version=(1, 0), pad=True, hlen=None):
    h = dict_text.encode()
    pre = 10 if version[0] == 1 else 12
    if pad:
        h += b" " * (-(pre + len(h) + 1) % 64) + b"\n"
    n = len(h) if hlen is None else hlen
    size = struct.pack("<H", n) if version[0] == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes(version) + size + h + data


def npy_corpus():
    f6 = floats(6)
    good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    out("npy/bad_magic.npy", b"\x93NUMPZ" + npy_raw(good, f6)[6:], "format", "bad magic")
    out("npy/truncated_preamble.npy", b"\x93NUMPY\x01", "format", "truncated")
    out("npy/version_4.npy", npy_raw(good, f6, version=(4, 0)), "unsupported",
        "format version 4.0")
    out("npy/header_past_end.npy", npy_raw(good, f6, hlen=5000), "format",
        "runs past the end of the file")
    out("npy/bad_dict.npy", npy_raw("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",
                                    f6), "format", "bad .npy header")
    out("npy/not_a_dict.npy", npy_raw("descr=<f4", f6), "format", "expected '{'")
    out("npy/missing_key.npy", npy_raw("{'descr': '<f4', 'fortran_order': False}", f6),
        "format", "lacks the key 'shape'")
    out("npy/unknown_key.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", f6),
        "format", "unexpected key 'x'")
    out("npy/duplicate_key.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (6,)}", f6),
        "format", "duplicate key 'shape'")
    out("npy/unterminated.npy", npy_raw("{'descr': '<f4", f6), "format", "unterminated string")
    out("npy/one_tuple.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}",
                                     f6), "format", "trailing comma")
    out("npy/fortran.npy", npy_raw("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                                   f6), "unsupported", "Fortran order")
    out("npy/big_endian.npy",
        npy_raw("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f6),
        "unsupported", "big-endian")
    out("npy/unsupported_dtype.npy",
        npy_raw("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", f6[:24]),
        "unsupported", "dtype '<c8' is not supported")
    out("npy/structured.npy",
        npy_raw("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", f6),
        "unsupported", "structured")
    out("npy/data_short.npy", npy_raw(good, f6[:20]), "format", "too short")
    out("npy/data_long.npy", npy_raw(good, f6 + b"\0" * 4), "format", "too long")
    out("npy/negative_dim.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", f6), "format",
        "negative dim")
    out("npy/dims_overflow.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                f6), "format", "element count overflows")
    out("npy/dim_too_big.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                f6), "format", "too large for int64")
    # declared shapes far larger than the file: refused from the header, nothing allocated
    out("npy/huge_shape.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", f6),
        "format", "needs 4000000000000 bytes, the file has 24")
    out("npy/dims_int32_overflow.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }", f6),
        "format", "needs 17179869184 bytes, the file has 24")
    out("npy/rank_33.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ("1, " * 33), f6[:4]),
        "unsupported", "more than 32 dims")
    out("npy/trailing_text.npy", npy_raw(good + " x", f6), "format", "after '}'")

    # Good files: hand-written headers in unusual but valid spellings ...
    out("valid/spelling.npy",
        npy_raw("{ 'shape' : ( 2 , 3 , ) ,\"fortran_order\":False,'descr':'<f4'}", f6), "ok")
    out("valid/py2_long.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", f6), "ok")
    out("valid/fortran_1d.npy",
        npy_raw("{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", f6), "ok")
    out("valid/i1_spelling.npy",
        npy_raw("{'descr': '<i1', 'fortran_order': False, 'shape': (2,), }", b"\xff\x05"), "ok")
    # ... and files written by numpy itself (see test_npy.c for the values).
    try:
        import numpy as np
    except ImportError:
        sys.stderr.write("numpy not found: the numpy-written files were not regenerated\n")
        return
    from numpy.lib import format as npf

    def save(rel, arr, version=None):
        path = os.path.join(HERE, rel)
        with open(path, "wb") as f:
            npf.write_array(f, arr, version=version)
        CASES.append((rel, "ok", ""))
    save("valid/np_f32.npy", (np.arange(6, dtype=np.float32) * 0.5).reshape(2, 3))
    save("valid/np_f64.npy", np.array([np.pi, np.e], dtype=np.float64))
    save("valid/np_f16.npy", np.array([1.5, -2.0, 65504.0], dtype=np.float16))
    save("valid/np_i32.npy", np.array([[1, -2], [3, -4]], dtype=np.int32))
    save("valid/np_i64.npy", np.array([-2, -1, 0, 1 << 40], dtype=np.int64))
    save("valid/np_i8.npy", np.array([-128, 127], dtype=np.int8))
    save("valid/np_u8.npy", np.array(7, dtype=np.uint8))
    save("valid/np_bool.npy", np.array([[True, False], [False, True]]))
    save("valid/np_empty.npy", np.zeros((0, 3), dtype=np.float32))
    save("valid/np_v2.npy", np.arange(4, dtype=np.int32), version=(2, 0))
    save("valid/np_v3.npy", np.arange(3, dtype=np.float64), version=(3, 0))
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    path = os.path.join(HERE, "npy/np_big_endian.npy")
    np.save(path, big)
    CASES.append(("npy/np_big_endian.npy", "unsupported", "big-endian"))
    np.save(os.path.join(HERE, "npy/np_fortran.npy"), np.asfortranarray(big.astype("<f4")))
    CASES.append(("npy/np_fortran.npy", "unsupported", "Fortran order"))
    np.save(os.path.join(HERE, "npy/np_u16.npy"), np.arange(3, dtype=np.uint16))
    CASES.append(("npy/np_u16.npy", "unsupported", "'<u2' is not supported"))


def main():
    kir_corpus()
    npy_corpus()
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("# file<TAB>expected code (ok, format, unsupported, version, limit)<TAB>"
                "message substring\n# written by gen_corpus.py; do not edit by hand\n")
        for rel, code, sub in CASES:
            f.write("%s\t%s\t%s\n" % (rel, code, sub))


if __name__ == "__main__":
    main()
