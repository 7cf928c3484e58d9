"""Does this answer state that claim? A small learned head over MiniLM token vectors.

Bag-of-words similarity cannot tell "precision is TP / (TP + FP)" from "precision is
TP / (TP + FN)": both use the same words. This head compares the two texts token by token, in
the style of ESIM (Chen et al., 2017) without its recurrent layers:

1. every token of the claim is softly aligned with the tokens of the answer (attention over
   cosine similarities of the encoder's contextual token vectors), and every answer token with
   the claim;
2. each token and its aligned counterpart are projected to a small space and compared
   (both vectors, their product and their absolute difference, plus the best raw similarity);
3. the comparisons are pooled (learned importance weights and a max) for each direction, and a
   two-layer network turns both directions and the sentence cosine into the log-odds that the
   answer states the claim correctly.

The encoder itself is not changed: the head reads the token vectors that the embedding grader
already computes (answer once per grading, bank texts from the cache), so it costs a few small
matrix products per (claim, answer) pair. It is trained on real human labels (SemEval-2013
correct/incorrect answers, Mohler scores) and the bank's variants and misconceptions by
``evals/fit_pair_model.py``, which also cross-validates it by question; its weights
(a few hundred kilobytes) are the versioned artifact ``artifacts/pair-v1.npz`` with the
figures and data it was fitted on in ``artifacts/pair-v1.json``. Inference here is plain
numpy and mirrors the torch module of the fitting script exactly (a test checks it).
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from app.config import resource_dir
from app.grading.embedding import TokenEmbeddings
from app.tokens import STOPWORDS, stem, words

NO_QUESTION = np.zeros(0, dtype=np.int64)

ARTIFACT_DIR = resource_dir("app.grading", "artifacts")
"""The shipped pair-model artifacts (package data of ``app.grading``)."""
DEFAULT_VERSION = "pair-v1"

TEXT_CACHE_MAX = 5_000
"""Texts kept with their projection (bank texts recur; answers pass through)."""
PARAM_NAMES = ("proj", "w1", "b1", "wg", "bg", "w2", "b2", "w3", "b3", "log_tau")
"""The head's parameters, as stored in the ``.npz`` artifact (names match the torch module)."""


def unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(n, 1e-8)


def stem_id(word: str) -> int:
    """A stable number for a word's stem (crc32), or -1 for stopwords and punctuation."""
    if not word.isalnum() or word in STOPWORDS:
        return -1
    return zlib.crc32(stem(word).encode())


def stem_ids(te: TokenEmbeddings) -> np.ndarray:
    """Per token: the stem number of its word (-1 for stopwords and punctuation)."""
    if not len(te.word_index):
        return np.zeros(0, dtype=np.int64)
    ids = np.array([stem_id(w) for w in te.words], dtype=np.int64)
    return ids[te.word_index]


def question_stems(question: str) -> np.ndarray:
    """The stem numbers of a question's content words (tokens made of them are "asked")."""
    return np.array(sorted({i for i in (stem_id(w) for w in words(question)) if i >= 0}), dtype=np.int64)


@dataclass(frozen=True)
class PairText:
    """One text as the head reads it: unit token vectors, content flags, the embedding, and
    (once a model has read it) the tokens' projection, so each text is projected once."""

    tokens: np.ndarray
    stems: np.ndarray
    embedding: np.ndarray
    proj: np.ndarray | None = None
    pre: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """The parts of the head's first layer that depend on this text alone (see
    :meth:`PairModel.view`), computed with the projection."""

    @classmethod
    def of(cls, te: TokenEmbeddings) -> PairText:
        return cls(tokens=unit_rows(te.vectors), stems=stem_ids(te), embedding=te.embedding)

    @property
    def content(self) -> np.ndarray:
        return (self.stems >= 0).astype(np.float32)

    def span(self, te: TokenEmbeddings, start: int, end: int) -> PairText | None:
        """The tokens inside the character span ``[start, end)`` of ``te`` (None if empty)."""
        sel = (te.offsets[:, 0] >= start) & (te.offsets[:, 1] <= end)
        if not sel.any():
            return None
        # The span's own embedding: the normalised mean of its raw token vectors, as the
        # encoder pools a sentence (TokenEmbeddings.pool).
        pooled = te.pool(start=start, end=end)
        return PairText(
            tokens=self.tokens[sel],
            stems=self.stems[sel],
            embedding=pooled if pooled is not None else self.embedding,
            proj=None if self.proj is None else self.proj[sel],
            pre=None if self.pre is None else (self.pre[0][sel], self.pre[1][sel], self.pre[2][sel]),
        )


def member(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.isin(a, b)`` for the short arrays of one text (a broadcast compare is about 8x
    faster there than ``isin``'s sort)."""
    if not len(a) or not len(b):
        return np.zeros(len(a), dtype=bool)
    return np.asarray((a[:, None] == b[None, :]).any(axis=1))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


class PairModel:
    """The trained head: :meth:`prob` is P(the answer states the claim correctly)."""

    def __init__(
        self, params: dict[str, np.ndarray], version: str = DEFAULT_VERSION, meta: dict[str, Any] | None = None
    ):
        missing = [n for n in PARAM_NAMES if n not in params]
        if missing:
            raise ValueError(f"pair model artifact lacks parameters: {', '.join(missing)}")
        self.p = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
        self.version = version
        self.meta = meta or {}
        self.tau = float(np.exp(self.p["log_tau"].reshape(-1)[0]))
        self._texts: OrderedDict[str, PairText] = OrderedDict()
        self._lock = threading.Lock()

    def text(self, te: TokenEmbeddings) -> PairText:
        """``te`` as the head reads it (bank texts are kept: they recur in every grading)."""
        with self._lock:
            hit = self._texts.get(te.text)
            if hit is not None:
                self._texts.move_to_end(te.text)
                return hit
        view = self.view(PairText.of(te))
        with self._lock:
            self._texts[te.text] = view
            while len(self._texts) > TEXT_CACHE_MAX:
                self._texts.popitem(last=False)
        return view

    def view(self, text: PairText) -> PairText:
        """``text`` with its tokens projected by this model, and the parts of the first layer
        that depend on it alone: as the aligned side, ``proj @ W_aligned``; as the reading
        side, ``proj @ W_own + content * w_content + b1`` and its gate ``proj @ wg + ...``."""
        if text.proj is not None and text.pre is not None:
            return text
        d, p = self._d, self.p
        proj = text.tokens @ p["proj"]
        content = text.content
        own = proj @ p["w1"][:d] + content[:, None] * p["w1"][4 * d + 1] + p["b1"]
        aligned = proj @ p["w1"][d : 2 * d]
        gate = proj @ p["wg"][:d] + content * p["wg"][d] + p["bg"].reshape(-1)[0]
        return PairText(text.tokens, text.stems, text.embedding, proj, (own, aligned, gate))

    # -- inference -------------------------------------------------------------------------

    @property
    def _d(self) -> int:
        return int(self.p["proj"].shape[1])

    def _side(self, x: PairText, y: PairText, asked: np.ndarray) -> np.ndarray:
        """Pooled comparison of every token of ``x`` with its soft alignment in ``y``.

        The first layer reads ``[px, pa, px*pa, |px-pa|, max sim, content, exact, asked]``
        (``pa`` the projection of the aligned vectors); its text-only parts come precomputed
        from :meth:`view`, and ``pa @ W`` is ``att @ (y.proj @ W)``."""
        p, d = self.p, self._d
        x, y = self.view(x), self.view(y)
        assert x.proj is not None and y.proj is not None and x.pre is not None and y.pre is not None
        w1 = p["w1"]
        s = x.tokens @ y.tokens.T  # (n, m) cosine similarities
        att = _softmax(s / self.tau, axis=1)
        px, pa = x.proj, att @ y.proj  # the projection of the aligned vectors (it is linear)
        exact = (member(x.stems, y.stems) & (x.stems >= 0)).astype(np.float32)
        in_question = member(x.stems, asked).astype(np.float32)
        h = (
            x.pre[0]
            + att @ y.pre[1]
            + (px * pa) @ w1[2 * d : 3 * d]
            + np.abs(px - pa) @ w1[3 * d : 4 * d]
            + np.outer(s.max(axis=1), w1[4 * d])
            + np.outer(exact, w1[4 * d + 2])
            + np.outer(in_question, w1[4 * d + 3])
        )
        h = np.maximum(h, 0.0)
        weights = _softmax(x.pre[2] + in_question * p["wg"][d + 1], axis=0)
        return np.concatenate([weights @ h, h.max(axis=0)])

    def logit(self, claim: PairText, answer: PairText, asked: np.ndarray | None = None) -> float:
        """Log-odds that ``answer`` states ``claim``; ``asked`` are the question's stem numbers
        (:func:`question_stems`): words the question already says are no evidence."""
        p = self.p
        if not len(claim.tokens) or not len(answer.tokens):
            return -10.0
        asked = NO_QUESTION if asked is None else asked
        cos = float(claim.embedding @ answer.embedding)
        feat = np.concatenate([self._side(claim, answer, asked), self._side(answer, claim, asked), [cos]])
        hidden = np.maximum(feat @ p["w2"] + p["b2"], 0.0)
        return float(hidden @ p["w3"] + p["b3"].reshape(-1)[0])

    def prob(self, claim: PairText, answer: PairText, asked: np.ndarray | None = None) -> float:
        z = self.logit(claim, answer, asked)
        return float(1.0 / (1.0 + np.exp(-max(-30.0, min(30.0, z)))))

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path = ARTIFACT_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.version}.npz"
        # float16 halves the file; the head's outputs change by < 1e-3 (checked when fitted).
        halves: dict[str, Any] = {k: v.astype(np.float16) for k, v in self.p.items()}
        np.savez_compressed(path, **halves)
        (directory / f"{self.version}.json").write_text(
            json.dumps({"version": self.version, **self.meta}, indent=1) + "\n", encoding="utf-8"
        )
        return path

    @classmethod
    def load(cls, version: str = DEFAULT_VERSION, directory: Path = ARTIFACT_DIR) -> PairModel:
        path = directory / f"{version}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"pair model artifact not found: {path} (run `python -m evals.fit_pair_model`)")
        with np.load(path, allow_pickle=False) as z:
            params = {k: z[k].astype(np.float32) for k in z.files}
        meta_path = directory / f"{version}.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        meta.pop("version", None)
        return cls(params, version=version, meta=meta)


@lru_cache(maxsize=4)
def shipped(version: str = DEFAULT_VERSION) -> PairModel:
    """The committed head (loaded once per process)."""
    return PairModel.load(version)
