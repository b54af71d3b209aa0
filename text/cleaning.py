"""Text clean-up shared by encoders, extractors and sentiment: markup removal and truncation."""

from __future__ import annotations

import html
import re
import unicodedata
import warnings
from collections.abc import Sequence

from quality.errors import DataWarning

_SCRIPT_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# A tag starts with a letter, "/" or "!", so "a < b" and "<3" in plain text survive.
_TAG = re.compile(r"</?[A-Za-z!][^<>]*>")
_BLOCK_TAG = re.compile(r"</?(p|br|div|li|ul|ol|tr|td|h[1-6])\b[^>]*>", re.IGNORECASE)
_BLOCK_BREAK = re.compile(r"([.!?;:])?\s*\x00(?:\s*\x00)*\s*")
_SPACE = re.compile(r"\s+")


def clean_text(text: object) -> str:
    """Plain text from whatever a catalogue holds: HTML tags and entities removed, spaces collapsed.

    ``None`` and NaN become ``""``. Unicode is NFC-normalised; scripts are left alone, so mixed
    Latin/Cyrillic/CJK text survives unchanged apart from whitespace.
    """
    if text is None or (isinstance(text, float) and text != text):
        return ""
    s = str(text)
    if "<" in s:
        s = _SCRIPT_STYLE.sub(" ", s)
        s = _COMMENT.sub(" ", s)
        s = _BLOCK_TAG.sub(" \x00 ", s)
        s = _TAG.sub(" ", s)
        # A block boundary becomes a sentence break (unless punctuation already ends the block),
        # so NER does not glue "<li>Sony</li><li>Bose</li>" into one name.
        s = _BLOCK_BREAK.sub(lambda m: (m.group(1) or ".") + " ", s.strip(" \t\r\n\x00"))
    if "&" in s:
        s = html.unescape(s)
    s = unicodedata.normalize("NFC", s)
    return _SPACE.sub(" ", s).strip()


def clean_texts(
    ids: Sequence[str], texts: Sequence[object], max_chars: int, what: str = "text"
) -> list[str]:
    """Clean every text and cut those longer than ``max_chars``, warning once with the ids cut.

    Args:
        ids: one id per text, used only to name truncated texts in the warning.
        texts: raw texts (``None``/NaN allowed).
        max_chars: the longest text kept whole; longer ones keep their first ``max_chars``.
        what: what the texts are, for the warning ("item text", "review").

    Returns:
        The cleaned texts, in order.
    """
    if len(ids) != len(texts):
        raise ValueError(f"got {len(ids)} ids for {len(texts)} texts; pass one id per text")
    out: list[str] = []
    cut: list[tuple[str, int]] = []
    for i, t in zip(ids, texts):
        s = clean_text(t)
        if len(s) > max_chars:
            cut.append((str(i), len(s)))
            s = s[:max_chars]
        out.append(s)
    if cut:
        shown = ", ".join(f"{i!r} ({n:,} chars)" for i, n in cut[:5])
        warnings.warn(
            f"{len(cut)} {what}(s) longer than max_chars={max_chars:,} were truncated: {shown}; "
            f"the cut tails are not embedded or searched for entities",
            DataWarning,
            stacklevel=3,
        )
    return out
