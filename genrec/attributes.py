"""Item attributes as features: the attribute table of a `Dataset` turned into one sparse
items x features matrix that the attribute-aware families read.

Each column of the table is featurised by what it holds: 0/1 flags (MovieLens genres) as they are;
other numbers (a price, a release year) as one-hot quantile bins, so that no scale decides; short
categorical text (a word or two: a brand) as one-hot; free text (Online Retail descriptions) as TF-IDF words, then LDA topics
(scikit-learn), the topic proportions being the features. Display-name columns (`title`) are names,
not features. Rows are L2-normalised, so that an item with many attributes does not outweigh one with
few; an item with no attribute has an empty row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genrec.attributes_config import FeatureConfig

log = logging.getLogger(__name__)

NAME_ONLY = ("title", "name", "genres")
"""Columns that are not featurised: display names, and MovieLens' genre count (the flags are)."""


@dataclass
class ItemFeatures:
    """One row per item (in the dataset's item order), one column per feature."""

    matrix: sp.csr_matrix
    names: list[str]
    used: dict[str, str] = field(default_factory=dict)
    """Each featurised column and how it was featurised."""

    @property
    def items_without(self) -> int:
        """Items with no attribute at all (an empty row)."""
        return int((np.diff(self.matrix.indptr) == 0).sum())

    def report(self) -> dict[str, object]:
        return {"columns": dict(self.used), "features": len(self.names), "items": self.matrix.shape[0],
                "items_without_attributes": self.items_without}


def featurise(items: pd.DataFrame | None, n_items: int, cfg: FeatureConfig | None = None) -> ItemFeatures:
    """Features of the attribute table `items` (one row per item, in item order, as `Dataset.items`
    holds it; None: no attributes, every row empty)."""
    cfg = cfg or FeatureConfig()
    blocks: list[sp.csr_matrix] = []
    names: list[str] = []
    used: dict[str, str] = {}
    if items is not None:
        if len(items) != n_items:
            raise ValueError(f"the attribute table has {len(items)} rows for {n_items} items")
        for column in items.columns:
            if column == "item_id" or column in NAME_ONLY:
                continue
            featurised = _column(items[column], column, cfg)
            if featurised is None:
                continue
            block, block_names, how = featurised
            blocks.append(block)
            names.extend(block_names)
            used[column] = how
    matrix = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n_items, 0), dtype=np.float32)
    features = ItemFeatures(_normalised(matrix.astype(np.float32)), names, used)
    log.info("item features: %s", features.report())
    return features


def _column(values: pd.Series, column: str, cfg: FeatureConfig):
    """(block, feature names, how) for one column, or None where it carries nothing usable."""
    numeric = pd.to_numeric(values, errors="coerce")
    present = values.notna()
    if present.sum() == 0:
        return None
    if numeric[present].notna().all():
        if set(numeric.dropna().unique()) <= {0.0, 1.0}:
            return sp.csr_matrix(numeric.fillna(0.0).to_numpy()[:, None]), [column], "flag"
        return _bins(numeric, column, cfg.bins)
    text = values.where(present, None).astype(object)
    if text.dropna().astype(str).str.split().str.len().mean() < cfg.text_words:
        codes, categories = pd.factorize(text, use_na_sentinel=True)
        rows = np.flatnonzero(codes >= 0)
        block = sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows])), shape=(len(text), len(categories)))
        return block, [f"{column}={c}" for c in categories], f"categorical ({len(categories)} values)"
    return _topics(text, column, cfg)


def _bins(numeric: pd.Series, column: str, bins: int):
    edges = np.unique(np.nanquantile(numeric.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)[1:-1]))
    which = np.searchsorted(edges, numeric.to_numpy(dtype=float), side="right")
    rows = np.flatnonzero(numeric.notna().to_numpy())
    block = sp.csr_matrix((np.ones(len(rows)), (rows, which[rows])), shape=(len(numeric), len(edges) + 1))
    return block, [f"{column}:bin{b}" for b in range(len(edges) + 1)], f"numeric ({len(edges) + 1} quantile bins)"


def _topics(text: pd.Series, column: str, cfg: FeatureConfig):
    from sklearn.decomposition import LatentDirichletAllocation
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    docs = text.fillna("").astype(str).str.lower().to_numpy()
    vectoriser = CountVectorizer(max_features=cfg.vocabulary, stop_words="english")
    try:
        counts = vectoriser.fit_transform(docs)
    except ValueError:  # no word at all (every value empty or a stop word)
        return None
    tfidf = TfidfTransformer().fit_transform(counts)
    n_topics = min(cfg.topics, counts.shape[1])
    lda = LatentDirichletAllocation(n_components=n_topics, random_state=cfg.seed, learning_method="batch")
    topics = lda.fit_transform(counts)
    topics[np.asarray(counts.sum(axis=1)).ravel() == 0] = 0.0  # no words: no topic (not the uniform prior)
    block = sp.hstack([sp.csr_matrix(topics), tfidf], format="csr")
    words = [f"{column}~{w}" for w in vectoriser.get_feature_names_out()]
    return block, [f"{column}:topic{t}" for t in range(n_topics)] + words, \
        f"text ({n_topics} LDA topics and {counts.shape[1]} TF-IDF words)"


def _normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix)
