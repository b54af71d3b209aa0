"""Text throughput on the item texts of ml-latest-small: embeddings, each extractor, the cache.

Prints one table (texts per second):

* embedding with :class:`text.encoders.TextEncoder` and with sentence-transformers called
  directly on the same batch and the same loaded model (the wrapper must stay within 10%);
* each extractor (``ner`` on all texts, ``llm-local`` on a small sample, ``llm-http`` when
  ``--llm-http-url`` names a server);
* the second, cached run of embedding and ``ner`` (target: at least 20x the first).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/text_throughput.py            # everything
    python benchmarks/text_throughput.py --limit 2000 --skip-llm            # quicker
    python benchmarks/text_throughput.py --model /path/to/st-folder --skip-ner --skip-llm
"""

from __future__ import annotations

import os

# Must precede the torch import: on a shared 2-core box spinning OpenMP threads slow MiniLM
# tenfold (DEPS.md, "CPU oversubscription").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MOVIES = ROOT.parent / "shared" / "data" / "movielens-latest-small" / "movies.csv"


def movie_texts(path: Path, limit: int | None) -> tuple[list[str], list[str]]:
    """ids and texts as ``Dataset.item_text()`` builds them: "Title (year). Genre, Genre"."""
    movies = pd.read_csv(path, dtype=str)
    if limit:
        movies = movies.head(limit)
    genres = movies["genres"].fillna("").str.replace("(no genres listed)", "", regex=False)
    texts = (movies["title"].fillna("") + ". " + genres.str.replace("|", ", ", regex=False)).str.rstrip(". ")
    return movies["movieId"].tolist(), texts.tolist()


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (the least disturbed by neighbours) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movies", type=Path, default=MOVIES)
    ap.add_argument("--limit", type=int, default=None, help="first N movies only")
    ap.add_argument("--model", default="default", help="encoder folder (default: MiniLM package)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per embedding variant")
    ap.add_argument("--skip-ner", action="store_true")
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--llm-sample", type=int, default=10, help="texts for llm-local")
    ap.add_argument("--llm-http-url", default=os.environ.get("KGREC_LLM_HTTP_URL"))
    ap.add_argument("--llm-http-model", default=os.environ.get("KGREC_LLM_HTTP_MODEL", "default"))
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from text.cache import TextCache
    from text.encoders import EncoderConfig, TextEncoder

    warnings.simplefilter("ignore")
    ids, texts = movie_texts(args.movies, args.limit)
    n = len(texts)
    rows: list[dict] = []

    def row(what: str, count: int, seconds: float, note: str = "") -> None:
        rows.append({"what": what, "texts": count, "seconds": round(seconds, 3),
                     "texts_per_s": round(count / seconds, 1) if seconds > 0 else float("inf"),
                     "note": note})

    # ---------------------------------------------------------------- embeddings
    t_load, enc = timed(lambda: TextEncoder(EncoderConfig(model=args.model, device=args.device,
                                                          batch_size=args.batch_size)))
    st = enc._st  # the very model object the wrapper uses: only the wrapper differs
    device = f"{enc.device} ({torch.cuda.get_device_name(0)})" if enc.device == "cuda" else \
        f"cpu ({torch.get_num_threads()} torch threads)"
    st.encode(texts[:64], batch_size=args.batch_size)  # warm-up: kernels, allocator, tokenizer
    direct_times, ours_times = [], []
    for _ in range(args.repeat):  # interleaved, so a noisy neighbour hurts both alike
        direct_times.append(timed(lambda: st.encode(texts, batch_size=args.batch_size,
                                                    normalize_embeddings=True,
                                                    convert_to_numpy=True))[0])
        ours_times.append(timed(lambda: enc.encode_documents(ids, texts))[0])
    direct, ours = min(direct_times), min(ours_times)
    overhead = ours / direct - 1
    row("embed: sentence-transformers direct", n, direct, f"model load {t_load:.1f} s")
    row("embed: TextEncoder (ours)", n, ours, f"wrapper overhead {overhead:+.1%} (target <= +10%)")

    with tempfile.TemporaryDirectory() as tmp:
        enc.cache = TextCache(Path(tmp) / "cache")
        first, _ = timed(lambda: enc.encode_documents(ids, texts))
        before = enc.texts_encoded
        second, _ = timed(lambda: enc.encode_documents(ids, texts))
        assert enc.texts_encoded == before, "the cached run reached the model"
        row("embed: first run with cache (writes)", n, first)
        row("embed: second run, cached", n, second, f"speed-up {first / second:.0f}x (target >= 20x)")
        enc.cache.close()

    # ---------------------------------------------------------------- extractors
    if not args.skip_ner:
        from text.extraction import DefaultNerExtractor

        t_load, ner = timed(lambda: DefaultNerExtractor("content"))
        ner.extract(ids[:64], texts[:64])  # warm-up
        t, mentions = timed(lambda: ner.extract(ids, texts))
        row("extract: ner (default, offline)", n, t,
            f"{len(mentions)} mentions; load {t_load:.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            ner.cache = TextCache(Path(tmp) / "cache")
            first, _ = timed(lambda: ner.extract(ids, texts))
            calls = ner.model_calls
            second, _ = timed(lambda: ner.extract(ids, texts))
            assert ner.model_calls == calls, "the cached run reached spaCy"
            row("extract: ner, first run with cache", n, first)
            row("extract: ner, second run, cached", n, second,
                f"speed-up {first / second:.0f}x (target >= 20x)")
            ner.cache.close()

    if not args.skip_llm:
        from text.errors import ExtractionError
        from text.extraction import ExtractionConfig, LocalLLMConfig, LocalLLMExtractor

        k = min(args.llm_sample, n)
        cfg = ExtractionConfig(backend="llm-local", max_unparsed_share=1.0,
                               llm_local=LocalLLMConfig(device=args.device))
        try:
            t_load, llm = timed(lambda: LocalLLMExtractor("content", cfg))
            t, mentions = timed(lambda: llm.extract(ids[:k], texts[:k]))
            row("extract: llm-local SmolLM2-135M", k, t,
                f"{len(mentions)} mentions, {llm.unparsed} unparsed, {llm.ungrounded} ungrounded; "
                f"load {t_load:.1f} s")
        except ExtractionError as e:
            rows.append({"what": "extract: llm-local", "texts": 0, "seconds": 0,
                         "texts_per_s": 0, "note": f"not run: {str(e)[:90]}"})

    if args.llm_http_url:
        from text.extraction import ExtractionConfig, HttpLLMConfig, HttpLLMExtractor

        k = min(args.llm_sample, n)
        cfg = ExtractionConfig(backend="llm-http", max_unparsed_share=1.0, llm_http=HttpLLMConfig(
            base_url=args.llm_http_url, model=args.llm_http_model))
        with HttpLLMExtractor("content", cfg) as http:
            t, mentions = timed(lambda: http.extract(ids[:k], texts[:k]))
            row("extract: llm-http", k, t, f"{len(mentions)} mentions, {http.unparsed} unparsed, "
                f"{http.usage.total_tokens} tokens")
    else:
        rows.append({"what": "extract: llm-http", "texts": 0, "seconds": 0, "texts_per_s": 0,
                     "note": "not run: no server (--llm-http-url / KGREC_LLM_HTTP_URL)"})

    print(f"\ntext throughput on {args.movies.name} ({n} item texts), device {device}\n")
    print(f"| {'what':<40} | {'texts':>6} | {'seconds':>8} | {'texts/s':>9} | note")
    print(f"|{'-' * 42}|{'-' * 8}|{'-' * 10}|{'-' * 11}|------")
    for r in rows:
        print(f"| {r['what']:<40} | {r['texts']:>6} | {r['seconds']:>8.2f} | "
              f"{r['texts_per_s']:>9} | {r['note']}")
    if args.json:
        args.json.write_text(json.dumps({"device": device, "n": n, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
