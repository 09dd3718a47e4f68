"""Extract digests remembered by size and modification time: read once, read again when either changes or when
asked."""

from __future__ import annotations

import hashlib
import os

from crimelake import hash_cache


def test_a_digest_is_read_once_then_remembered_until_the_file_changes(settings, tmp_path, monkeypatch):
    path = tmp_path / "2024-01-bedfordshire-street.csv"
    path.write_bytes(b"Crime ID,Month\nabc,2024-01\n")
    reads = []
    real = hash_cache.sha256_file
    monkeypatch.setattr(hash_cache, "sha256_file", lambda p: reads.append(p) or real(p))

    want = hashlib.sha256(path.read_bytes()).hexdigest()
    assert hash_cache.sha256_of(settings, path) == (want, True)
    assert hash_cache.sha256_of(settings, path) == (want, False)
    assert len(reads) == 1

    # Same size, new content and time: read again, and the new digest returned.
    path.write_bytes(b"Crime ID,Month\nabd,2024-01\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    changed = hashlib.sha256(path.read_bytes()).hexdigest()
    assert hash_cache.sha256_of(settings, path) == (changed, True)

    # Content changed with size and time put back: only a full re-read (rehash) sees it.
    before = path.stat()
    path.write_bytes(b"Crime ID,Month\nabe,2024-01\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert hash_cache.sha256_of(settings, path) == (changed, False)
    assert hash_cache.sha256_of(settings, path, rehash=True) == (hashlib.sha256(path.read_bytes()).hexdigest(), True)
    assert len(reads) == 3
