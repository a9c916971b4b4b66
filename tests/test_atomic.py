"""fem_ms.atomic: a file is replaced whole or not at all."""

import os

import pytest

from fem_ms.atomic import atomic_path, write_text_atomically


def test_the_file_appears_only_when_the_block_ends(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target, suffix=".txt") as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.txt.") and tmp.suffix == ".txt"
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new" and os.listdir(target.parent) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_text_atomically(tmp_path / "out.txt", "old")
    for interruption in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)), atomic_path(target) as tmp:
            tmp.write_text("half")
            raise interruption
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
