"""Non-answers are caught cheaply, and short real answers are not."""

from __future__ import annotations

import pytest

from app.grading.triage import is_non_answer
from app.tokens import content_words, new_content_words, stem

QUESTION = "What is data drift, and how would you detect it for a model in production?"


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   ",
        "\n\t",
        "...",
        "?!",
        "I don't know",
        "i dont know.",
        "I do not know, sorry.",
        "idk",
        "IDK!!",
        "No idea.",
        "no clue",
        "Not sure.",
        "I'm not sure, sorry.",
        "pass",
        "Pass.",
        "skip",
        "Sorry, I don't know this one.",
        "Honestly I don't remember.",
        "I have no idea about this",
        "dunno",
        "n/a",
        "NO ANSWER",
        "I can't answer that.",
    ],
)
def test_non_answers(answer: str) -> None:
    assert is_non_answer(answer, QUESTION)


@pytest.mark.parametrize(
    "answer",
    [
        "What is data drift?",
        "Data drift, how would you detect it in production?",
        "It is data drift.",
        "The model in production.",
    ],
)
def test_copying_the_question_is_a_non_answer(answer: str) -> None:
    assert is_non_answer(answer, QUESTION)


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("main", "Where do C++ programs begin to execute?"),
        ("O(n)", "How many comparisons does a linear search need?"),
        ("1", "How many constructors does a default class get?"),
        ("push and pop", "What are the two main functions defined by a stack?"),
        ("Compare feature distributions with PSI.", QUESTION),
        ("I don't know much, but drift means the input distribution shifts.", QUESTION),
        ("None, it is stateless.", "What state does the service keep?"),
    ],
)
def test_short_real_answers_are_not_non_answers(answer: str, question: str) -> None:
    assert not is_non_answer(answer, question)


def test_word_helpers() -> None:
    assert stem("caching") == stem("cached") == stem("caches")
    assert "the" not in content_words("the model drifts")
    assert content_words("not all features") == ["not", "all", "featur"]
    assert new_content_words("data drift means shifted inputs", QUESTION) == [
        "mean",
        "shift",
        "input",
    ]
