"""Per-point verdicts from the pair head: wrong (misconception), covered, unclear, missing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from app.grading.embedding_grader import EmbeddingGrader
from app.grading.pair_model import PARAM_NAMES, PairModel, PairText, question_stems
from app.grading.schemas import EmbeddingEvidence, GradeInput, RubricPoint, Verdict
from app.grading.verdicts import COVERED_MIN, MISSING_MAX, AnswerSpans, judge_points

Grade = Callable[[str], EmbeddingEvidence]

QUESTION = "What is the difference between precision and recall?"
REFERENCE = (
    "Precision is the share of predicted positives that are truly positive, TP / (TP + FP). Recall "
    "is the share of actual positives the model finds, TP / (TP + FN). Favour precision when false "
    "alarms are costly, recall when a miss is costly."
)
RUBRIC = [
    RubricPoint(
        id="r1",
        text="Defines precision as the share of predicted positives that are truly positive, TP / (TP + FP).",
        weight=2,
        essential=True,
        variants=["Of everything the model flags, precision is how much is really a hit."],
        misconceptions=["Precision is the share of the real positives that the model manages to find, TP / (TP + FN)."],
    ),
    RubricPoint(
        id="r2",
        text="Defines recall as the share of actual positives the model finds, TP / (TP + FN).",
        weight=2,
        essential=True,
        variants=["Recall is how many of the real cases the model manages to catch."],
        misconceptions=["Recall is the share of flagged items that turn out to be correct, TP / (TP + FP)."],
    ),
    RubricPoint(id="r3", text="Favours precision when false alarms are costly and recall when misses are costly."),
]
CORRECT = (
    "Precision is the share of predicted positives that are truly positive, TP / (TP + FP). "
    "Recall is the share of actual positives that the model finds, TP / (TP + FN)."
)
SWAPPED = (
    "Precision is the share of the real positives that the model finds, TP / (TP + FN). "
    "Recall is the share of flagged items that are correct, TP / (TP + FP)."
)


@pytest.fixture
def grade(embedding_grader: EmbeddingGrader) -> Grade:
    """Grades an answer to the precision/recall question with the shared real grader."""

    def run(answer: str) -> EmbeddingEvidence:
        return embedding_grader.grade(
            GradeInput(question=QUESTION, reference_answer=REFERENCE, answer=answer, rubric=RUBRIC)
        )

    return run


def test_swapped_definitions_are_wrong_quoted_and_fail(grade: Grade) -> None:
    ev = grade(SWAPPED)
    by_id = {p.id: p for p in ev.points}
    assert by_id["r1"].verdict is Verdict.wrong, by_id["r1"]
    assert by_id["r1"].evidence and by_id["r1"].evidence in SWAPPED
    assert by_id["r1"].misconception == RUBRIC[0].misconceptions[0]
    assert "wrong_essential" in ev.caps
    assert ev.score <= 1.5


def test_the_same_words_in_the_right_relation_are_covered(grade: Grade) -> None:
    ev = grade(CORRECT)
    by_id = {p.id: p for p in ev.points}
    assert by_id["r1"].verdict is Verdict.covered and by_id["r2"].verdict is Verdict.covered
    assert by_id["r1"].confidence is not None and by_id["r1"].confidence > 0.2
    assert not ev.caps
    assert ev.score > grade(SWAPPED).score + 1.0


def test_keyword_list_is_capped_with_its_reason(grade: Grade) -> None:
    ev = grade("precision, recall, TP, FP, FN, threshold, false alarms, misses, F1")
    assert "keyword_list" in ev.caps and ev.score <= 1.0


def _constant_model(prob: float) -> PairModel:
    """A head whose every answer is ``prob`` (all weights zero, the output bias set)."""
    k, h, h2 = 8, 4, 3
    shapes = {
        "proj": (384, k),
        "w1": (4 * k + 4, h),
        "b1": (h,),
        "wg": (k + 2,),
        "bg": (1,),
        "w2": (4 * h + 1, h2),
        "b2": (h2,),
        "w3": (h2,),
        "b3": (1,),
        "log_tau": (1,),
    }
    params = {n: np.zeros(shapes[n], dtype=np.float32) for n in PARAM_NAMES}
    params["b3"][0] = np.log(prob / (1 - prob))
    return PairModel(params, version="constant")


@pytest.mark.parametrize(
    ("prob", "verdict"),
    [(0.45, Verdict.unclear), (COVERED_MIN + 0.05, Verdict.covered), (MISSING_MAX - 0.1, Verdict.missing)],
)
def test_undecided_evidence_is_unclear_not_missing(
    prob: float, verdict: Verdict, embedding_grader: EmbeddingGrader
) -> None:
    encoder = embedding_grader.encoder
    model = _constant_model(prob)
    point = RubricPoint(id="p", text="Compares live feature distributions with a training baseline.")
    answer_te = encoder.encode_tokens(["We watch the inputs. Then we compare them."])[0]
    bank = dict(zip([point.text], encoder.encode_tokens([point.text]), strict=True))
    spans = AnswerSpans.of(answer_te, model, [(0, 19), (20, len(answer_te.text))], 2)
    [j] = judge_points(model, [point], spans, bank, question_stems("How do you detect drift?"))
    assert j.verdict is verdict
    assert j.confidence == pytest.approx(abs(2 * prob - 1), abs=1e-3)
    assert (j.evidence is None) == (verdict is Verdict.missing)


def test_numpy_head_matches_the_torch_module_it_was_trained_as() -> None:
    torch = pytest.importorskip("torch")
    from evals.fit_pair_model import HYPER, _batch, _module

    module = _module(HYPER, seed=3)
    module.eval()
    params = {n: getattr(module, n).detach().numpy().copy() for n in PARAM_NAMES}
    model = PairModel(params)
    rng = np.random.default_rng(0)

    def text(n: int) -> PairText:
        t = rng.normal(size=(n, 384)).astype(np.float32)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        e = t.mean(0) / np.linalg.norm(t.mean(0))
        return PairText(tokens=t, stems=rng.integers(-1, 6, size=n), embedding=e)

    rows = [(text(5), text(9), np.array([1, 2])), (text(12), text(3), np.array([], dtype=np.int64))]
    with torch.no_grad():
        expected = module(_batch(rows, max_tokens=96)).numpy()
    got = np.array([model.logit(c, a, q) for c, a, q in rows])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_head_says_no_but_the_words_cover_the_point_is_unclear_with_no_confidence(
    embedding_grader: EmbeddingGrader,
) -> None:
    shared = embedding_grader
    grader = EmbeddingGrader(shared.encoder, shared.calibration, pair=_constant_model(0.05))
    point = RubricPoint(id="p", text="Compares live feature distributions with a training baseline.", essential=True)
    answer = "We compare the live feature distributions with a baseline taken from the training data."
    inp = GradeInput(
        question="How do you detect drift?", reference_answer=point.text * 3, answer=answer, rubric=[point]
    )
    [p] = grader.grade(inp).points
    assert p.verdict is Verdict.unclear and p.confidence == 0.0 and p.evidence


def test_evidence_is_the_sentence_that_makes_the_point_and_a_missing_point_quotes_nothing(grade: Grade) -> None:
    answer = (
        "I have used both in fraud detection work for a few years now. "
        "Precision is the share of predicted positives that are truly positive, TP / (TP + FP). "
        "Our team reviewed the dashboards every Monday morning."
    )
    points = {p.id: p for p in grade(answer).points}
    assert points["r1"].verdict is Verdict.covered
    assert points["r1"].evidence == (
        "Precision is the share of predicted positives that are truly positive, TP / (TP + FP)."
    )
    assert points["r3"].verdict is Verdict.missing and points["r3"].evidence is None


def test_a_point_not_confirmed_quotes_one_sentence_not_a_window(embedding_grader: EmbeddingGrader) -> None:
    from app.bank.loader import bank_folders, load_bank
    from app.grading.features import sentence_spans
    from evals.gold import grade_input

    bank, _ = load_bank(bank_folders())
    answer = (
        "I think the model is overfitting, because it does much better on the data it was trained on than on "
        "new data. First thing I'd probably check is whether the validation data is kind of similar to the "
        "training data, like maybe it comes from a different period. Then to fix it I would make the trees "
        "less deep and try to get more training data if possible. That should close the gap somewhat."
    )
    points = embedding_grader.grade(grade_input(bank, "ml-fundamentals-bias-variance-03", answer)).points
    quoted = [p for p in points if p.evidence]
    assert quoted and all(len(sentence_spans(p.evidence or "")) == 1 for p in quoted), [p.evidence for p in quoted]
    gap = next(p for p in points if "train-validation gap" in p.text)
    assert gap.evidence is not None and gap.evidence.startswith("I think the model is overfitting")
    assert all(p.evidence is None for p in points if p.verdict is Verdict.missing)
