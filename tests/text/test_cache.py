"""The on-disk text cache: durable across re-opening, keyed by content, holding no ids or text."""

from __future__ import annotations

import copy

import numpy as np

from text.cache import CACHE_FILE, TextCache, cache_key


def test_keys_separate_their_parts():
    assert cache_key("ab", "c") != cache_key("a", "bc")
    assert cache_key("m", "v1", "hello") == cache_key("m", "v1", "hello")
    assert cache_key("m", "v1", "hello") != cache_key("m", "v2", "hello")


def test_vectors_and_documents_survive_reopening(tmp_path):
    cache = TextCache(tmp_path)
    k1, k2 = cache_key("m", "v", "a"), cache_key("m", "v", "b")
    cache.put_vectors({k1: np.arange(4, dtype=np.float32)})
    cache.put_documents({k2: [["Paris", "city", 0.85, 0, 5]]})
    cache.close()
    again = TextCache(tmp_path)
    np.testing.assert_array_equal(again.get_vectors([k1, k2])[k1], np.arange(4, dtype=np.float32))
    assert again.get_documents([k2, k1]) == {k2: [["Paris", "city", 0.85, 0, 5]]}
    assert again.stats.hits == 2 and again.stats.misses == 2 and len(again) == 2


def test_the_file_holds_hashes_not_ids_or_input_text(minilm, tmp_path):
    minilm.cache = TextCache(tmp_path)
    minilm.encode_documents(["user-4711"], ["my private profile text about knitting"])
    raw = (tmp_path / CACHE_FILE).read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.iterdir() if p.name != CACHE_FILE
    )
    assert b"user-4711" not in raw and b"knitting" not in raw


def test_a_copied_cache_reopens_the_same_file(tmp_path):
    cache = TextCache(tmp_path)
    k = cache_key("x")
    cache.put_vectors({k: np.ones(2, dtype=np.float32)})
    clone = copy.deepcopy(cache)
    assert clone.path == cache.path and k in clone.get_vectors([k])


def test_a_second_run_over_many_texts_does_no_model_work(minilm, tmp_path):
    texts = [f"item number {i} in a catalogue of garden tools" for i in range(150)]
    ids = [f"i{i}" for i in range(150)]
    minilm.cache = TextCache(tmp_path)
    first = minilm.encode_documents(ids, texts)
    assert minilm.texts_encoded == 150
    fresh = copy.copy(minilm)  # a new process would start its counters at zero, as here
    fresh.texts_encoded = 0
    second = fresh.encode_documents(ids, texts)
    assert fresh.texts_encoded == 0 and fresh.batches == minilm.batches
    np.testing.assert_array_equal(first.vectors, second.vectors)
