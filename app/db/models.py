"""Import every model so ``Base.metadata`` knows all tables (Alembic and tests use this)."""

from app.db.base import Base
from app.db.instances import AppInstance
from app.grading.models import LLMCall
from app.interview.models import Candidate, InterviewSession, Turn
from app.review.models import ReviewOverride

__all__ = ["AppInstance", "Base", "Candidate", "InterviewSession", "LLMCall", "ReviewOverride", "Turn"]
