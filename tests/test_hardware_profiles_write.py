"""hardware_profiles._write.replace_file: the one atomic write of tosim's outputs, hwlib's cost
cache and its bundled tables."""
import os
import stat

import pytest

from hardware_profiles._write import replace_file


def test_text_bytes_and_chunks_replace_the_file_whole(tmp_path):
    path = str(tmp_path / "out.csv")
    replace_file(path, "a,b\r\n1,2\n")
    assert (tmp_path / "out.csv").read_bytes() == b"a,b\r\n1,2\n"            # written as given, UTF-8
    replace_file(path, b"\x00\xff")
    assert (tmp_path / "out.csv").read_bytes() == b"\x00\xff"
    replace_file(path, (f"{i}\n" for i in range(3)))
    assert (tmp_path / "out.csv").read_text() == "0\n1\n2\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    replace_file(path, "x", mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["out.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "out.csv")
    replace_file(path, "old\n")

    def chunks():
        yield "new\n"
        raise RuntimeError("the producer failed")

    with pytest.raises(RuntimeError):
        replace_file(path, chunks())
    assert (tmp_path / "out.csv").read_text() == "old\n" and os.listdir(tmp_path) == ["out.csv"]
    with pytest.raises(OSError):
        replace_file(str(tmp_path / "missing" / "x.csv"), "x")
