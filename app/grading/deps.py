"""The grading domain's route dependencies: the grader and the grading endpoint's admission gate."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from app.deps import process_context
from app.grading.service import Grader
from app.limits import GradeGate


async def get_grader(request: Request) -> Grader | None:
    """The grader, waiting (briefly) for the model if the process is still loading it."""
    ctx = process_context(request)
    if not ctx.loaded.is_set():
        await asyncio.to_thread(ctx.loaded.wait, 120)
    grader: Grader | None = ctx.grader
    return grader


GraderDep = Annotated[Grader | None, Depends(get_grader)]


def get_grade_gate(request: Request) -> GradeGate:
    """Admission of the stateless grading endpoint (rate and concurrency limits per process)."""
    gate: GradeGate = process_context(request).grade_gate
    return gate


GradeGateDep = Annotated[GradeGate, Depends(get_grade_gate)]
