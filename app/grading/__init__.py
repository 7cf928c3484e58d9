"""Grading: embedding evidence, the rubric LLM judge, and how they combine."""
