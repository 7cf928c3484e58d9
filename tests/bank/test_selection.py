"""Each rule of the selection policy, on a small fixture bank."""

from __future__ import annotations

from collections import Counter

import pytest

from app.bank.loader import Bank, load_bank
from app.bank.selection import SelectionContext, choose_next, target_difficulty
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def demo() -> Bank:
    bank, _ = load_bank([FIXTURES / "bank" / "good"])
    return bank


def run(bank: Bank, n: int, **kw: object) -> list[str]:
    asked: list[str] = []
    for _ in range(n):
        q = choose_next(bank, SelectionContext(track="demo", asked_ids=list(asked), **kw))  # type: ignore[arg-type]
        if q is None:
            break
        asked.append(q.id)
    return asked


def test_never_repeats_within_a_session(demo: Bank) -> None:
    asked = run(demo, 30, seed=1)
    assert len(asked) == 18 == len(set(asked))


def test_topics_are_covered_evenly(demo: Bank) -> None:
    asked = run(demo, 9, seed=5)
    counts = Counter(demo.questions[i].topic for i in asked)
    assert counts == {"alpha": 3, "beta": 3, "gamma": 3}
    only = run(demo, 4, seed=5, topics=["beta", "gamma"])
    assert {demo.questions[i].topic for i in only} == {"beta", "gamma"}


def test_deterministic_for_a_seed(demo: Bank) -> None:
    assert run(demo, 6, seed=42) == run(demo, 6, seed=42)
    assert any(run(demo, 6, seed=s) != run(demo, 6, seed=42) for s in range(5))


def test_avoids_recently_seen_questions(demo: Bank) -> None:
    recent = [q for q in demo.questions if q.startswith("demo-alpha")][:5]
    asked = run(demo, 3, seed=2, topics=["alpha"], recent_ids=recent)
    assert asked[0] == "demo-alpha-06"  # the only alpha question not seen recently
    assert len(set(asked)) == 3  # then, with nothing fresh left, recent ones rather than none
    # When everything was seen recently, it still asks rather than stopping.
    assert choose_next(demo, SelectionContext(track="demo", recent_ids=list(demo.questions))) is not None


def test_adaptive_difficulty_moves_up_and_down() -> None:
    assert target_difficulty(SelectionContext(track="demo")).value == "medium"
    up = SelectionContext(track="demo", main_scores=[("medium", 4.5)])
    assert target_difficulty(up).value == "hard"
    down = SelectionContext(track="demo", main_scores=[("medium", 1.0)])
    assert target_difficulty(down).value == "easy"
    floor = SelectionContext(track="demo", main_scores=[("easy", 0.5)])
    assert target_difficulty(floor).value == "easy"
    fixed = SelectionContext(track="demo", difficulty="hard", main_scores=[("hard", 0.0)])
    assert target_difficulty(fixed).value == "hard"


def test_adaptive_choice_follows_the_score(demo: Bank) -> None:
    strong = choose_next(
        demo, SelectionContext(track="demo", seed=3, asked_ids=["demo-alpha-02"], main_scores=[("medium", 4.8)])
    )
    weak = choose_next(
        demo, SelectionContext(track="demo", seed=3, asked_ids=["demo-alpha-02"], main_scores=[("medium", 1.2)])
    )
    assert strong is not None and strong.difficulty.value == "hard"
    assert weak is not None and weak.difficulty.value == "easy"


def test_prefers_weakest_topic_and_tags(demo: Bank) -> None:
    first = choose_next(
        demo, SelectionContext(track="demo", seed=9, topic_scores={"alpha": 4.5, "beta": 1.5, "gamma": 3.0})
    )
    assert first is not None and first.topic == "beta"
    tagged = choose_next(demo, SelectionContext(track="demo", seed=9, topics=["gamma"], weak_tags=["shared"]))
    assert tagged is not None and "shared" in tagged.tags


def test_a_fixed_difficulty_outranks_the_topic_spread(demo: Bank) -> None:
    """Asking for easy gives another topic's easy question before this topic's medium one."""

    def ids(topic: str, level: str) -> list[str]:
        return sorted(q.id for q in demo.questions.values() if q.topic == topic and q.difficulty.value == level)

    # Every topic asked twice, but alpha's two were medium: only alpha has easy ones left.
    asked = ids("beta", "easy") + ids("gamma", "easy") + ids("alpha", "medium")
    for seed in range(8):
        q = choose_next(demo, SelectionContext(track="demo", asked_ids=asked, seed=seed, difficulty="easy"))
        assert q is not None and q.id in ids("alpha", "easy"), seed
    # With no easy question left anywhere, the nearest level serves.
    asked += ids("alpha", "easy")
    q = choose_next(demo, SelectionContext(track="demo", asked_ids=asked, seed=0, difficulty="easy"))
    assert q is not None and q.difficulty.value == "medium"
