"""Text embeddings that work offline: WordLlama's 256 numbers per text, from the weights its wheel ships.

The optional extra ``superintendent[embeddings]`` installs ``wordllama``
(a 19 MB wheel holding its token embeddings and tokenizer). Nothing is ever
downloaded: the model is loaded with ``disable_download=True`` from the
package's own folder (passed as ``cache_dir``, because WordLlama looks for its
tokenizer in a ``tokenizer/`` folder while the wheel ships ``tokenizers/``).

:class:`TextEmbeddings` is a scikit-learn transformer (texts in, an ``(n,
256)`` array out) with nothing but its parameters as state, so it clones and
pickles; the model itself is loaded once per process and shared, as it is
read-only. The preset ``embeddings_logistic_regression`` of
:mod:`superintendent.learning.presets` puts ``as_text`` (rows and dicts to
one string) in front of it.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from superintendent.validation import ValidationError

__all__ = ["EMBEDDING_DIM", "MISSING_EXTRA", "TextEmbeddings", "embedding_model", "require_wordllama", "wordllama_installed"]

WORDLLAMA_CONFIG = "l2_supercat"  # the configuration whose 256-d weights and tokenizer the wheel ships
EMBEDDING_DIM = 256
MISSING_EXTRA = ('text embeddings need the optional package wordllama, which is not installed here; install the extra: '
                 'pip install "superintendent[embeddings]" (a 19 MB wheel that holds the model: nothing is downloaded when it runs)')

_lock = threading.Lock()
_model: Any = None  # WordLlamaInference, loaded on first use; read-only, shared by every transformer in the process


def _import_wordllama() -> ModuleType:
    """``import wordllama``, leaving the process's logging as it was (wordllama calls ``logging.basicConfig(level=INFO)``
    on import, which would print every library's INFO messages on stderr)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        import wordllama
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


def wordllama_installed() -> bool:
    """Whether the extra's package is installed (found on the path; not imported, so cheap enough for every page draw)."""
    return importlib.util.find_spec("wordllama") is not None


def require_wordllama() -> ModuleType:
    """The ``wordllama`` module; :class:`ValidationError` saying how to install it when it is missing."""
    try:
        return _import_wordllama()
    except ImportError:
        raise ValidationError(MISSING_EXTRA) from None


def embedding_model() -> Any:
    """The process's WordLlama model (loaded from the installed package's own files on first use, then shared)."""
    global _model
    with _lock:
        if _model is None:
            wordllama = require_wordllama()
            folder = Path(wordllama.__file__).resolve().parent
            try:
                _model = wordllama.WordLlama.load(WORDLLAMA_CONFIG, dim=EMBEDDING_DIM, cache_dir=folder, disable_download=True)
            except FileNotFoundError as exc:
                raise ValidationError(f"the installed wordllama ({folder}) lacks its model files ({exc}); reinstall it: "
                                      'pip install --force-reinstall "superintendent[embeddings]"') from None
        return _model


def _batches(lengths: np.ndarray, batch_chars: int) -> Iterator[np.ndarray]:
    """Row numbers in batches of similar length (shortest first) whose padded size, rows x the longest text's characters,
    stays within ``batch_chars`` (a longer text goes alone): a batch's token array is padded to its longest text."""
    order = np.argsort(lengths, kind="stable")
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or (end + 1 - start) * max(int(lengths[order[end]]), 1) > batch_chars:
            yield order[start:end]
            start = end


class TextEmbeddings(TransformerMixin, BaseEstimator):
    """Texts to WordLlama embeddings: the mean of their tokens' 256-d vectors (an empty text: zeros).

    ``max_chars``: a text's first this many characters are embedded (a mean over them is the text's average already);
    ``batch_chars``: how many characters, padded, one batch embeds at once (memory stays near 3 KB per character of a
    batch: the token vectors, float32, and their masked copy).
    """

    def __init__(self, max_chars: int = 20_000, batch_chars: int = 100_000) -> None:
        self.max_chars = max_chars
        self.batch_chars = batch_chars

    def fit(self, x: Sequence[Any], y: Any = None) -> TextEmbeddings:
        """Nothing to learn: loads the model (a missing extra fails here, with what to install)."""
        for name in ("max_chars", "batch_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValidationError(f"TextEmbeddings' {name} must be a whole number of at least 1; got {value!r}")
        self.n_features_out_ = int(embedding_model().embedding.shape[1])
        return self

    def transform(self, x: Sequence[Any]) -> np.ndarray:
        """An ``(n, 256)`` float array, one row per text (a value that is not a string is embedded as ``str(value)``)."""
        texts = [(v if isinstance(v, str) else str(v))[: self.max_chars] for v in x]
        model = embedding_model()
        out = np.zeros((len(texts), model.embedding.shape[1]), dtype=np.float32)
        for rows in _batches(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), self.batch_chars):
            out[rows] = model.embed([texts[i] for i in rows], batch_size=len(rows))
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"embedding{i}" for i in range(EMBEDDING_DIM)], dtype=object)
