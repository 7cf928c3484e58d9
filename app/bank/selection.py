"""Which question to ask next: the selection policy, kept apart from the interview engine.

The rules, in the order they apply:

1. never repeat a question within a session;
2. avoid questions the candidate saw in their recent sessions (unless nothing else is left);
3. spread questions evenly over the requested topics, and among the least-asked topics lean
   toward the candidate's weakest ones (lowest average score across sessions);
4. match the requested difficulty, or in adaptive mode a level that moves up after a strong
   answer and down after a weak one;
5. within what is left, prefer questions that exercise the candidate's weakest rubric tags,
   then break ties with a random generator seeded per session and turn (deterministic).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.bank.loader import Bank
from app.bank.schemas import BankQuestion, Difficulty

ADAPTIVE = "adaptive"
STRONG_SCORE = 4.0
WEAK_SCORE = 2.5


@dataclass
class SelectionContext:
    track: str
    topics: Sequence[str] = ()
    """Requested topics; empty means every topic of the track."""
    difficulty: str = ADAPTIVE
    seed: int = 0
    asked_ids: Sequence[str] = ()
    """Main questions already asked in this session, in order."""
    recent_ids: Sequence[str] = ()
    """Questions this candidate saw in recent sessions."""
    main_scores: Sequence[tuple[str, float | None]] = ()
    """(difficulty, score) of this session's graded main answers, in order."""
    topic_scores: dict[str, float] = field(default_factory=dict)
    """Candidate's average score per topic across earlier sessions (weakest = lowest)."""
    weak_tags: Sequence[str] = ()
    """Tags of rubric points the candidate most often missed across sessions."""


def target_difficulty(ctx: SelectionContext) -> Difficulty:
    """The difficulty to aim for next."""
    if ctx.difficulty != ADAPTIVE:
        return Difficulty(ctx.difficulty)
    level = Difficulty.medium.level
    for asked_difficulty, score in ctx.main_scores:
        if score is None:
            continue
        level = Difficulty(asked_difficulty).level
        if score >= STRONG_SCORE:
            level += 1
        elif score < WEAK_SCORE:
            level -= 1
    return Difficulty.from_level(level)


def choose_next(bank: Bank, ctx: SelectionContext) -> BankQuestion | None:
    """The next main question, or ``None`` when the bank has nothing left to ask."""
    pool = [q for q in bank.for_track(ctx.track) if not ctx.topics or q.topic in ctx.topics]
    asked = set(ctx.asked_ids)
    pool = [q for q in pool if q.id not in asked]
    if not pool:
        return None
    recent = set(ctx.recent_ids)
    fresh = [q for q in pool if q.id not in recent]
    pool = fresh or pool
    if ctx.difficulty != ADAPTIVE:
        # A fixed difficulty outranks the topic spread: another topic's easy question before
        # this topic's medium one. Only when no topic has one left does the nearest level serve
        # (and the question says so: ``QuestionOut.difficulty_note``).
        wanted = [q for q in pool if q.difficulty.value == ctx.difficulty]
        pool = wanted or pool

    # Topic spread: the least-asked requested topics first, the weakest of those first.
    topic_of = {q.id: q.topic for q in bank.for_track(ctx.track)}
    asked_per_topic = Counter(topic_of.get(i, "") for i in ctx.asked_ids)
    topics = sorted({q.topic for q in pool})
    fewest = min(asked_per_topic[t] for t in topics)
    candidates_topics = [t for t in topics if asked_per_topic[t] == fewest]
    known = [t for t in candidates_topics if t in ctx.topic_scores]
    if known:
        weakest = min(ctx.topic_scores[t] for t in known)
        candidates_topics = [t for t in known if ctx.topic_scores[t] == weakest]
    rng = random.Random(f"{ctx.seed}:{len(ctx.asked_ids)}")
    topic = rng.choice(sorted(candidates_topics))
    pool = [q for q in pool if q.topic == topic]

    # Difficulty: the target level, else the nearest one available.
    target = target_difficulty(ctx).level
    nearest = min(abs(q.difficulty.level - target) for q in pool)
    pool = [q for q in pool if abs(q.difficulty.level - target) == nearest]

    # Weak rubric areas: prefer questions tagged with what the candidate tends to miss.
    if ctx.weak_tags:
        weak = set(ctx.weak_tags)
        best = max(len(weak & set(q.tags)) for q in pool)
        if best:
            pool = [q for q in pool if len(weak & set(q.tags)) == best]
    return rng.choice(sorted(pool, key=lambda q: q.id))
