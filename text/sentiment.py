"""Review sentiment (VADER) turned into a signed weight per interaction.

VADER is rule-based and ships its lexicon inside its wheel, so it runs offline at tens of
thousands of reviews per second. It reads English only: other languages score neutral (0), which
leaves their weight at 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from text.cleaning import clean_texts


class SentimentConfig(BaseModel):
    """How a review's sentiment scales its interaction's weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    positive_gain: float = Field(1.0, ge=0.0)
    """Weight = 1 + positive_gain x compound for a positive review (at most 2 by default)."""
    negative_gain: float = Field(2.0, ge=0.0)
    """Weight = 1 + negative_gain x compound for a negative review: with the default 2 a review
    at compound -0.5 or below gives a weight of 0 or less, so it counts against the item."""
    max_chars: int = Field(5000, ge=16)
    """Longer reviews are cut (with a ``DataWarning``) before scoring."""


_ANALYZER = None


def _analyzer():
    global _ANALYZER
    if _ANALYZER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _ANALYZER = SentimentIntensityAnalyzer()
    return _ANALYZER


def _review_ids(interactions: pd.DataFrame) -> list[str]:
    if {"user_id", "item_id"} <= set(interactions.columns):
        return [f"{u}->{i}" for u, i in zip(interactions["user_id"], interactions["item_id"])]
    return [str(i) for i in interactions.index]


def review_sentiment(
    interactions: pd.DataFrame, config: SentimentConfig | None = None
) -> pd.Series:
    """VADER compound score in ``[-1, 1]`` per interaction; NaN where there is no review text.

    Args:
        interactions: a frame with a ``review_text`` column (``Dataset.interactions``).
        config: truncation length.

    Returns:
        A float64 series named ``review_sentiment`` on the frame's index.

    Raises:
        ValueError: the frame has no ``review_text`` column.
    """
    config = config or SentimentConfig()
    if "review_text" not in interactions.columns:
        raise ValueError(
            f"interactions have no 'review_text' column (columns: {list(interactions.columns)})"
        )
    texts = clean_texts(
        _review_ids(interactions), list(interactions["review_text"]), config.max_chars, "review"
    )
    analyzer = _analyzer()
    memo: dict[str, float] = {}
    scores = np.full(len(texts), np.nan, dtype=np.float64)  # no review: unknown, not neutral
    for n, t in enumerate(texts):
        if not t:
            continue
        if t not in memo:
            memo[t] = float(analyzer.polarity_scores(t)["compound"])
        scores[n] = memo[t]
    return pd.Series(scores, index=interactions.index, name="review_sentiment")


def review_weights(interactions: pd.DataFrame, config: SentimentConfig | None = None) -> pd.Series:
    """A signed multiplier for each interaction's weight, from its review's sentiment.

    1.0 where there is no review (or a neutral one); up to ``1 + positive_gain`` for glowing
    reviews; below 0 for clearly negative ones (compound < ``-1 / negative_gain``), so that a
    one-star "terrible, broke in a day" (compound -0.71, weight -0.42) counts against the item
    rather than for it. Ratings are not read here: the graph keeps them separately.

    Args:
        interactions: a frame with a ``review_text`` column (``Dataset.interactions``).
        config: the gains and truncation length.

    Returns:
        A float64 series named ``review_weight`` on the frame's index.
    """
    config = config or SentimentConfig()
    compound = review_sentiment(interactions, config).to_numpy()
    gain = np.where(compound >= 0, config.positive_gain, config.negative_gain)
    weights = np.where(np.isnan(compound), 1.0, 1.0 + gain * np.nan_to_num(compound))
    return pd.Series(weights, index=interactions.index, name="review_weight")
