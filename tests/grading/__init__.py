"""Tests of the grading package.

The embedding model takes a second or two to load, so the tests of this package share one
:class:`Encoder` (and grader) per test session through :func:`shared_grader`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.grading.embedding_grader import EmbeddingGrader


@lru_cache(maxsize=1)
def shared_grader() -> EmbeddingGrader:
    """One real encoder + grader (bundled all-MiniLM-L6-v2, committed calibration)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import EmbeddingGrader

    return EmbeddingGrader(Encoder())
