"""The memory-plus-SQLite cache shared by the embeddings and the judge (:mod:`app.grading.kv_cache`)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from app.grading.kv_cache import KVCache, identity


def text_cache(path: Path | None, **kw: object) -> KVCache[str]:
    return KVCache(path, "texts", encode=str.encode, decode=bytes.decode, **kw)  # type: ignore[arg-type]


def test_memory_only_lru_evicts_the_least_recently_used() -> None:
    cache = text_cache(None, max_items=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # "a" is now the most recent
    cache.put("c", "3")
    assert "b" not in cache and cache.get("b") is None
    assert cache.get_many(["a", "c", "b"]) == {"a": "1", "c": "3"}
    assert len(cache) == 2


def test_values_persist_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    first = text_cache(path)
    first.put_many({"a": "1", "b": "2"})
    first.close()
    again = text_cache(path, max_items=1)
    assert again.get_many(["a", "b", "zz"]) == {"a": "1", "b": "2"}
    assert len(again) == 1  # disk hits fill the memory layer, within its bound
    assert text_cache(path, max_items=0).get("b") == "2"  # disk only


def test_decode_none_or_an_error_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    text_cache(path).put_many({"good": "ok", "stale": "old", "bad": "x"})

    def decode(blob: bytes) -> str | None:
        if blob == b"x":
            raise ValueError("unreadable")
        return None if blob == b"old" else blob.decode()

    cache: KVCache[str] = KVCache(path, "texts", encode=str.encode, decode=decode)
    assert cache.get_many(["good", "stale", "bad"]) == {"good": "ok"}


def test_tables_are_separate_so_a_new_version_ignores_old_entries(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    KVCache(path, "things_v1", encode=identity, decode=identity).put("k", b"old layout")
    v2 = KVCache(path, "things_v2", encode=identity, decode=identity)
    assert v2.get("k") is None
    v2.put("k", b"new")
    assert KVCache(path, "things_v1", encode=identity, decode=identity).get("k") == b"old layout"


def test_readonly_never_creates_or_writes(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    ro = text_cache(path, readonly=True)
    ro.put("a", "1")
    assert ro.get("a") == "1"  # the memory layer still works
    assert not path.exists()

    text_cache(path).put("b", "2")
    ro = text_cache(path, readonly=True)
    assert ro.get("b") == "2"
    ro.put("c", "3")
    ro.close()
    assert text_cache(path).get("c") is None  # nothing was written to the file


def test_readonly_file_of_another_layout_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE other (x INTEGER)")
        db.commit()
    assert text_cache(path, readonly=True).get("a") is None


def test_an_unwritable_place_leaves_the_memory_layer(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = text_cache(blocker / "sub" / "cache.sqlite")  # its folder cannot be made
    cache.put("a", "1")  # logged, not raised
    assert cache.get("a") == "1"


def test_a_path_that_is_not_a_database_disables_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = text_cache(path)
    cache.put("a", "1")  # logged, not raised
    assert cache.get("a") == "1"
    assert text_cache(path, max_items=0).get("a") is None


def test_table_names_are_checked() -> None:
    with pytest.raises(ValueError, match="not a table name"):
        KVCache(None, "x; DROP TABLE y", encode=identity, decode=identity)


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = text_cache(tmp_path / "cache.sqlite", max_items=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(100):
                cache.put(f"{n}-{i}", str(i))
                assert cache.get(f"{n}-{i}") == str(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) == 50
    assert text_cache(tmp_path / "cache.sqlite", max_items=0).get_many([f"{n}-99" for n in range(4)]) == {
        f"{n}-99": "99" for n in range(4)
    }
