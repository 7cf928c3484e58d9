"""The judge's reply: one Pydantic model for the schema it is asked for and the tolerant parse.

:class:`JudgeReply` is both sides of the contract. Its JSON schema, closed up for OpenAI strict
structured outputs by :func:`strict_json_schema`, is the ``response_format`` the judge sends
(:func:`reply_json_schema`); validating whatever came back against it is the tolerant parse.
Models wrap JSON in code fences, add prose around it, name fields differently (``rationale``,
``overall_score``), write the score as ``"4/5"`` or a verdict as ``"Partially covered"``, invent
rubric ids or skip some, and sometimes "quote" text the candidate never wrote: the model's
aliases and before-validators absorb the wording, :func:`parse_judge_reply` checks the content
against the rubric and the answer. A reply with nothing usable raises :class:`JudgeParseError`
(a parse error is never turned into a score of 0).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, ValidationError, WithJsonSchema

from app.grading.features import is_off_topic
from app.grading.schemas import GradeInput, JudgePoint, JudgeVerdict, RubricPoint, Verdict
from app.tokens import content_words, repeats_run, word_runs, words

FlaggedVerdict = JudgeVerdict
"""Kept as an alias: the verdict with its ``injection_attempt`` flag is the shared schema's."""

VERDICT_VALUES = [v.value for v in Verdict if v is not Verdict.unclear]
"""What the judge may answer per point ("unclear" is the embedding grader's own verdict)."""


class JudgeParseError(ValueError):
    """The reply held nothing usable (no JSON object, or no score and no known rubric point), or
    broke the contract (a score outside 0-5, a rubric point that does not exist)."""


# --------------------------------------------------------------------------------------------
# Field coercion (the before-validators of the reply model)
# --------------------------------------------------------------------------------------------

_SCORE_RE = re.compile(
    r"^\s*(?:score\s*[:=]?\s*)?(-?\d+(?:[.,]\d+)?)\s*"
    r"(?:(?:/|out\s+of|of)\s*(\d+(?:[.,]\d+)?))?",
    re.IGNORECASE,
)


def parse_score(value: object) -> float | None:
    """A 0-5 score (one decimal) from ``4``, ``"4"``, ``"4/5"``, ``"8/10"``, ``"4 out of 5"``.

    Anything unreadable gives ``None``. A number outside 0-5 (on its own scale) makes the reply
    invalid (:class:`JudgeParseError`): a judge that answers 99 has not followed the contract,
    and clamping it to 5 would reward that.
    """
    number: float
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _SCORE_RE.match(value)
        if not match:
            return None
        number = float(match.group(1).replace(",", "."))
        if match.group(2):
            scale = float(match.group(2).replace(",", "."))
            if scale <= 0:
                return None
            if scale != 5:
                number = number / scale * 5
    elif isinstance(value, dict):
        return parse_score(value.get("value", value.get("score")))
    else:
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    if not 0.0 <= number <= 5.0:
        raise JudgeParseError(f"the judge's score {value!r} is outside 0-5")
    return round(number, 1)


_VERDICT_WORDS: dict[Verdict, frozenset[str]] = {
    Verdict.covered: frozenset({"covered", "cover", "full", "yes", "met", "correct", "present", "addressed"}),
    Verdict.missing: frozenset({"missing", "absent", "no", "none"}),
    Verdict.wrong: frozenset({"wrong", "incorrect", "contradicted", "inaccurate"}),
}


def parse_verdict(value: object) -> Verdict | None:
    """A point verdict from the judge's wording (``None`` when unreadable).

    Case, spaces, ``_`` and ``-`` do not matter; ``partial...``/``partly...`` is partial,
    ``not`` before a word for covered (not covered, not met, not addressed) is missing, and
    ``fully`` adds nothing.
    """
    if not isinstance(value, str):
        return None
    key = re.sub(r"[\s_-]+", " ", value).strip().lower()
    if key.startswith(("partial", "partly")):
        return Verdict.partial
    if key.startswith("not "):
        return Verdict.missing if parse_verdict(key[4:]) is Verdict.covered else None
    key = key.removeprefix("fully ")
    return next((verdict for verdict, words in _VERDICT_WORDS.items() if key in words), None)


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "1", "y"}
    if isinstance(value, int | float):
        return bool(value)
    return False


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return " ".join(_as_text(v) for v in value if v is not None).strip()
    return str(value).strip()


def _meaningful(text: str) -> bool:
    """Not empty and not a bare placeholder such as ``"..."``."""
    return any(ch.isalnum() for ch in text)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [t for t in (_as_text(v) for v in items if v is not None) if _meaningful(t)]


def _text_or_empty(value: object) -> str:
    text = _as_text(value)
    return text if _meaningful(text) else ""


def _point_list(value: object) -> list[dict[str, Any]]:
    """The reply's points as a list of objects: ``{"p1": {...}}`` maps become entries with that
    id, anything that is not an object is left out."""
    if isinstance(value, dict):
        value = [{"id": k, **v} if isinstance(v, dict) else {"id": k, "verdict": v} for k, v in value.items()]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


Text = Annotated[str, BeforeValidator(_as_text)]
Prose = Annotated[str, BeforeValidator(_text_or_empty)]
Texts = Annotated[list[str], BeforeValidator(_as_list)]


def _aka(*names: str) -> Any:
    """The field's validation aliases: its own name first (the one the JSON schema shows)."""
    return AliasChoices(*names)


# --------------------------------------------------------------------------------------------
# The reply model: the response_format schema and the tolerant parse
# --------------------------------------------------------------------------------------------


class JudgeReplyPoint(BaseModel):
    """The judge's reading of one rubric point (evidence and reasoning before the verdict)."""

    id: Text = Field("", validation_alias=_aka("id", "point_id", "rubric_id"))
    quote: Text = Field("", validation_alias=_aka("quote", "evidence", "evidence_quote"))
    reasoning: Text = Field("", validation_alias=_aka("reasoning", "rationale", "explanation"))
    verdict: Annotated[
        Verdict | None, BeforeValidator(parse_verdict), WithJsonSchema({"type": "string", "enum": VERDICT_VALUES})
    ] = Field(None, validation_alias=_aka("verdict", "status", "coverage"))
    """``None`` when the wording is unreadable: the point is left out (counted missing)."""


class JudgeReply(BaseModel):
    """What the judge answers for one answer. Field order is the order the model writes in:
    reasoning and per-point evidence come before the score."""

    reasoning: Text = Field("", validation_alias=_aka("reasoning", "rationale", "explanation"))
    points: Annotated[list[JudgeReplyPoint], BeforeValidator(_point_list)] = Field(
        default_factory=list, validation_alias=_aka("points", "rubric_points", "rubric", "verdicts")
    )
    score: Annotated[float | None, BeforeValidator(parse_score), WithJsonSchema({"type": "number"})] = Field(
        None, validation_alias=_aka("score", "overall_score", "final_score", "grade")
    )
    """``None`` when unreadable (the score then comes from the points)."""
    strengths: Texts = Field(default_factory=list)
    gaps: Texts = Field(default_factory=list, validation_alias=_aka("gaps", "weaknesses"))
    improvement: Prose = Field("", validation_alias=_aka("improvement", "improvements", "suggestion"))
    follow_up: Prose = Field("", validation_alias=_aka("follow_up", "followup", "follow_up_question"))
    injection_attempt: Annotated[bool, BeforeValidator(_as_bool)] = Field(
        False, validation_alias=_aka("injection_attempt", "injection")
    )

    @classmethod
    def read(cls, obj: dict[str, Any]) -> JudgeReply:
        """Validate a decoded reply object; a contract breach raises :class:`JudgeParseError`."""
        try:
            return cls.model_validate(obj)
        except ValidationError as err:
            for detail in err.errors():
                cause = (detail.get("ctx") or {}).get("error")
                if isinstance(cause, JudgeParseError):
                    raise cause from None
            raise JudgeParseError(f"the judge's reply does not fit the verdict shape: {err}") from None


class FollowUpReply(BaseModel):
    """A follow-up question that came back as a JSON object."""

    follow_up: Text = Field("", validation_alias=_aka("follow_up", "question", "followup"))


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema as OpenAI strict structured outputs want it: ``$ref``s inlined
    (llama.cpp-style grammars get the same self-contained schema), every object closed with all
    its properties required, no titles, descriptions or defaults (the prompt explains the
    fields; the schema only constrains them)."""
    raw = model.model_json_schema()
    defs: dict[str, Any] = raw.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = defs[str(node["$ref"]).rsplit("/", 1)[-1]]
            return walk({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "description", "default"):
                continue
            if key == "properties":
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        if "properties" in out:
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    return dict(walk(raw))


def reply_json_schema(name: str = "judge_verdict") -> dict[str, Any]:
    """The ``json_schema`` block of ``response_format``: :class:`JudgeReply`, strict."""
    return {"name": name, "strict": True, "schema": strict_json_schema(JudgeReply)}


# --------------------------------------------------------------------------------------------
# Finding the JSON object
# --------------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA_RE = re.compile(r",(\s*[}\]])")


def _loads_object(text: str) -> dict[str, Any] | None:
    for candidate in (text, _TRAILING_COMMA_RE.sub(r"\1", text)):
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _balanced_objects(text: str) -> list[str]:
    """Top-level ``{...}`` spans of ``text`` (string- and escape-aware), in order."""
    spans: list[str] = []
    depth = 0
    start = -1
    in_string = False
    escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def extract_json_object(text: str | None) -> dict[str, Any] | None:
    """The outermost JSON object in ``text``: bare, in ``` fences, or amid prose."""
    if not text or not text.strip():
        return None
    stripped = text.strip()
    found = _loads_object(stripped)
    if found is not None:
        return found
    for block in _FENCE_RE.findall(stripped):
        found = _loads_object(block.strip())
        if found is not None:
            return found
    # The largest balanced object that parses wins (the outermost one, not a nested point).
    for span in sorted(_balanced_objects(stripped), key=len, reverse=True):
        found = _loads_object(span)
        if found is not None:
            return found
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        return _loads_object(stripped[first : last + 1])
    return None


# --------------------------------------------------------------------------------------------
# Quote checking
# --------------------------------------------------------------------------------------------

_QUOTE_CHARS = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb`"
_ELLIPSIS_RE = re.compile(r"\s*(?:\.\.\.|\u2026)\s*")
_WS_RE = re.compile(r"\s+")
_TRANSLATE = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)


def normalise_text(text: str) -> str:
    """Whitespace-, case- and typography-normalised text, for comparing quotes."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    return _WS_RE.sub(" ", text).strip().casefold()


def quote_in_answer(quote: str, answer: str) -> bool:
    """Whether ``quote`` occurs in ``answer`` once normalised (``...`` may elide text)."""
    haystack = normalise_text(answer)
    edge = _QUOTE_CHARS + ".,;:!? "  # models add or drop the closing period and the quotes
    pieces = [normalise_text(p).strip(edge) for p in _ELLIPSIS_RE.split(quote)]
    pieces = [p for p in pieces if p]
    if not pieces:
        return False
    pos = 0
    for piece in pieces:
        found = haystack.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


_DOWNGRADE = {Verdict.covered: Verdict.partial, Verdict.partial: Verdict.missing}
CREDIT = {Verdict.covered: 1.0, Verdict.partial: 0.5, Verdict.missing: 0.0, Verdict.wrong: 0.0, Verdict.unclear: 0.0}


# --------------------------------------------------------------------------------------------
# The whole reply, checked against the rubric and the answer
# --------------------------------------------------------------------------------------------


@dataclass
class ParseReport:
    """What parsing did to the model's reply, for logs and tests."""

    dropped_ids: list[str] = field(default_factory=list)
    """Rubric points the model returned with a verdict that could not be read (ignored)."""
    unassessed_ids: list[str] = field(default_factory=list)
    """Rubric ids the model did not return (counted as missing)."""
    downgraded_ids: list[str] = field(default_factory=list)
    """Points whose quote was not found in the answer (downgraded one level, quote cleared)."""
    score_from_points: bool = False
    score_adjustment: float = 0.0


def rubric_score(points: list[JudgePoint], rubric: list[RubricPoint]) -> float:
    """0-5 from weighted point credits (covered 1, partial 0.5, missing/wrong 0)."""
    weights = {p.id: p.weight for p in rubric}
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    got = sum(weights.get(p.id, 0.0) * CREDIT[p.verdict] for p in points)
    return round(5.0 * got / total, 1)


def read_reply(text: str | None) -> JudgeReply:
    """The :class:`JudgeReply` in a raw reply text (bare JSON, fenced, or amid prose)."""
    obj = extract_json_object(text)
    if obj is None:
        raise JudgeParseError("no JSON object in the judge's reply")
    return JudgeReply.read(obj)


def parse_judge_reply(
    text: str | None,
    *,
    rubric: list[RubricPoint],
    answer: str,
    prompt_version: str,
    model: str,
) -> tuple[FlaggedVerdict, ParseReport]:
    """Parse and check one judge reply against the rubric and the answer the judge saw.

    Raises :class:`JudgeParseError` when nothing usable is there.
    """
    reply = read_reply(text)
    report = ParseReport()
    rubric_ids = [p.id for p in rubric]
    known = set(rubric_ids)

    by_id: dict[str, JudgePoint] = {}
    for raw in reply.points:
        if raw.id not in known:
            # A point the rubric does not have: the judge graded something else (or was told
            # to by the answer). The whole reply is invalid, not just that entry.
            raise JudgeParseError(f"the judge's reply names a rubric point that does not exist: {raw.id!r}")
        if raw.id in by_id:
            continue
        if raw.verdict is None:
            report.dropped_ids.append(raw.id)
            continue
        by_id[raw.id] = JudgePoint(id=raw.id, verdict=raw.verdict, quote=raw.quote, reasoning=raw.reasoning)

    score = reply.score
    if score is None and not by_id:
        raise JudgeParseError("the judge's reply has no readable score and no known rubric point")

    # Quotes must be verbatim (normalised) spans of the answer the judge saw.
    lost = 0.0
    for pid, point in list(by_id.items()):
        if point.verdict in (Verdict.covered, Verdict.partial):
            if not quote_in_answer(point.quote, answer):
                new = _DOWNGRADE[point.verdict]
                weight = next(p.weight for p in rubric if p.id == pid)
                lost += weight * (CREDIT[point.verdict] - CREDIT[new])
                by_id[pid] = point.model_copy(update={"verdict": new, "quote": ""})
                report.downgraded_ids.append(pid)
        elif point.verdict is Verdict.wrong and not quote_in_answer(point.quote, answer):
            # "wrong" must quote what the candidate said: without a verbatim quote the judge has
            # not shown the error, so the point only counts as not addressed (no credit either way).
            by_id[pid] = point.model_copy(update={"verdict": Verdict.missing, "quote": ""})
            report.downgraded_ids.append(pid)
        elif point.quote and (point.verdict is Verdict.missing or not quote_in_answer(point.quote, answer)):
            by_id[pid] = point.model_copy(update={"quote": ""})

    points: list[JudgePoint] = []
    for pid in rubric_ids:
        if pid in by_id:
            points.append(by_id[pid])
        else:
            report.unassessed_ids.append(pid)
            points.append(JudgePoint(id=pid, verdict=Verdict.missing, reasoning="not assessed by the judge"))

    if score is None:
        score = rubric_score(points, rubric)
        report.score_from_points = True
    elif lost > 0:
        # The model's score leaned on evidence that is not in the answer: take that credit off.
        total = sum(p.weight for p in rubric) or 1.0
        adjusted = round(max(0.0, score - 5.0 * lost / total), 1)
        report.score_adjustment = round(adjusted - score, 1)
        score = adjusted

    verdict = FlaggedVerdict(
        reasoning=reply.reasoning,
        points=points,
        score=score,
        strengths=reply.strengths,
        gaps=reply.gaps,
        improvement=reply.improvement,
        follow_up=reply.follow_up,
        prompt_version=prompt_version,
        model=model,
        injection_attempt=reply.injection_attempt,
    )
    return verdict, report


_FOLLOW_UP_PREFIX_RE = re.compile(
    r"^\s*(?:\d+[.)]\s*|[-*]\s*|(?:follow[- ]?up(?: question)?|question)\s*:\s*)+", re.IGNORECASE
)


def clean_follow_up(text: str | None, max_chars: int = 400) -> str | None:
    """The follow-up question from a plain-text reply: first non-empty line, no preamble."""
    if not text:
        return None
    obj = extract_json_object(text) if "{" in text else None
    if obj is not None:
        text = FollowUpReply.model_validate(obj).follow_up
    for line in text.splitlines():
        line = _FOLLOW_UP_PREFIX_RE.sub("", line).strip().strip(_QUOTE_CHARS).strip()
        if line and not line.startswith("```"):
            return line[:max_chars].rstrip()
    return None


FOLLOW_UP_MAX_WORDS = 60
LEAK_SHARE = 0.5
"""A follow-up that repeats this share of a missed point's own content words gives it away."""
LEAK_RUN = 5
"""... as does one that copies a run of this many words of the point or the reference answer."""


def follow_up_problem(question: str, inp: GradeInput, missed: list[RubricPoint]) -> str | None:
    """Why a follow-up the model wrote cannot be asked (``None`` if it can): it must be one
    question, short, about the question's subject (it shares a content word with the question,
    the reference, the rubric or the candidate's answer: a lexical check, so a fair question in
    wholly new words is refused and the bank's is asked instead), and must not give away a
    missed point."""
    if question.count("?") != 1 or not question.rstrip().endswith("?"):
        return "not exactly one question"
    if len(words(question)) > FOLLOW_UP_MAX_WORDS:
        return f"longer than {FOLLOW_UP_MAX_WORDS} words"
    if is_off_topic(question, inp) and not set(content_words(question)) & set(content_words(inp.answer)):
        return "not about the question's subject"  # shares no word with the question, reference, rubric or answer
    asked = set(content_words(inp.question))
    said = set(content_words(question))
    for point in missed:
        own = set(content_words(point.text)) - asked
        if len(own) >= 3 and len(own & said) / len(own) >= LEAK_SHARE:
            return f"gives away the point {point.id!r}"
    if repeats_run(question, word_runs([inp.reference_answer, *(p.text for p in missed)], LEAK_RUN), LEAK_RUN):
        return "copies the reference answer or a rubric point"
    return None


ECHO_RUN = 8
"""Feedback that repeats this many words in a row of the prompt's own instructions is an echo."""


def drop_prompt_echo(verdict: JudgeVerdict, instruction_runs: set[tuple[str, ...]]) -> JudgeVerdict:
    """``verdict`` without the candidate-facing feedback (strengths, gaps, improvement) that
    repeats the prompt's instructions instead of saying something about the answer (a weak model
    may copy its prompt into a field). ``instruction_runs`` are the prompt's runs of
    :data:`ECHO_RUN` words (:func:`app.tokens.word_runs`, computed once per judge). What is
    dropped falls back to the grader's own feedback."""

    def echoes(text: str) -> bool:
        return repeats_run(text, instruction_runs, ECHO_RUN)

    return verdict.model_copy(
        update={
            "strengths": [s for s in verdict.strengths if not echoes(s)],
            "gaps": [g for g in verdict.gaps if not echoes(g)],
            "improvement": "" if echoes(verdict.improvement) else verdict.improvement,
        }
    )
