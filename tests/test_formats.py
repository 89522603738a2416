"""Event file formats written from their specifications and read back; each bad-file case names the file."""
import gzip

import numpy as np
import pytest
from conftest import SHARED_DATA
from datafolders import random_events

from pipeline.data import gesture
from pipeline.data.formats import aedat2, aedat4, aedat31, idx
from pipeline.data.formats.errors import EventFileError


def test_aedat2_dvs128_round_trip(tmp_path):
    ev = random_events(np.random.default_rng(0), 1000, (128, 128), 10**9)
    (tmp_path / "a.aedat").write_bytes(aedat2.encode_dvs128(ev, header=("#Format: RAW", "#Creation time: 0")))
    assert np.array_equal(aedat2.read_dvs128(tmp_path / "a.aedat"), ev)


def test_aedat2_address_bits_follow_the_publishers_reader(tmp_path):
    # one event at address y=5 (bits 8-14), x_bits=3 (bits 1-7), bit 0 = 0: x = 127 - 3, ON
    raw = b"#!AER-DAT2.0\r\n" + np.array([(5 << 8) | (3 << 1), 42], ">u4").tobytes()
    (tmp_path / "b.aedat").write_bytes(raw)
    ev = aedat2.read_dvs128(tmp_path / "b.aedat")
    assert (ev["x"][0], ev["y"][0], ev["p"][0], ev["t"][0]) == (124, 5, 1, 42)


def test_aedat31_round_trip_with_timestamp_overflow(tmp_path):
    ev = random_events(np.random.default_rng(1), 3000, (128, 128), 2**33)     # crosses 2**31 and 2**32
    (tmp_path / "g.aedat").write_bytes(aedat31.encode_polarity(ev, packet_size=700))
    assert np.array_equal(aedat31.read_polarity(tmp_path / "g.aedat"), ev)


def test_aedat31_skips_other_packets_and_invalid_events(tmp_path):
    ev = random_events(np.random.default_rng(2), 10, (128, 128), 1000)
    raw = bytearray(aedat31.encode_polarity(ev))
    head_end = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    # clear the valid bit of the first event; add a special-event packet (type 0, 8-byte events) before it
    raw[head_end + 28] &= 0xFE
    special = aedat31.PACKET.pack(0, 1, 8, 4, 0, 2, 2, 2) + bytes(16)
    (tmp_path / "g.aedat").write_bytes(bytes(raw[:head_end]) + special + bytes(raw[head_end:]))
    assert np.array_equal(aedat31.read_polarity(tmp_path / "g.aedat"), ev[1:])


def test_tonic_npy_round_trip(tmp_path):
    ev = random_events(np.random.default_rng(3), 100, (128, 128), 10**6)
    np.save(tmp_path / "3.npy", gesture.encode_tonic_npy(ev))
    assert np.array_equal(gesture.read_tonic_npy(tmp_path / "3.npy"), ev)


def test_idx_round_trip(tmp_path):
    a = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    (tmp_path / "x.gz").write_bytes(gzip.compress(idx.encode_idx(a)))
    assert np.array_equal(idx.read_idx(tmp_path / "x.gz"), a)


def test_real_aedat4_recording():
    path = SHARED_DATA / "sample_320x240.aedat4"
    if not path.exists():
        pytest.skip(f"{path} not present")
    ev = aedat4.read_polarity(path)
    assert len(ev) == 111_954 and ev["x"].max() == 319 and ev["y"].max() == 239
    assert np.all(np.diff(ev["t"]) >= 0) and 0.4 < ev["p"].mean() < 0.6


@pytest.mark.parametrize("reader, content, message", [
    (aedat2.read_dvs128, b"#!AER-DAT2.0\r\n" + bytes(8 * 3 + 5), r"t\.aedat: .*truncated after byte 38"),
    (aedat2.read_dvs128, b"#!AER-DAT3.1\r\n#!END-HEADER\r\n", r"t\.aedat: not an AEDAT 2\.0 file"),
    (aedat2.read_dvs128, b"#!AER-DAT2.0 no newline", r"t\.aedat: header line at byte 0 is not terminated"),
    (aedat31.read_polarity, b"#!AER-DAT2.0\r\n", r"t\.aedat: not an AEDAT 3\.1 file"),
    (aedat31.read_polarity, b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + aedat31.PACKET.pack(1, 1, 8, 4, 0, 9, 9, 9)
     + bytes(20), r"t\.aedat: packet at byte 28 declares 9 events of 8 bytes; the file ends after 20"),
    (aedat31.read_polarity, b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + bytes(10), r"packet header truncated at byte 28"),
    (aedat4.read_polarity, b"#!AER-DAT4.0\r\n garbage", r"t\.aedat: not a readable AEDAT 4 file"),
    (idx.read_idx, bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]), r"t\.aedat: IDX data truncated after byte 10"),
])
def test_bad_files_name_the_file(tmp_path, reader, content, message):
    (tmp_path / "t.aedat").write_bytes(content)
    with pytest.raises(EventFileError, match=message):
        reader(tmp_path / "t.aedat")
