"""Tests of the grading package.

The real embedding grader comes from the session fixture ``embedding_grader`` of
``tests/conftest.py`` (one model load per run, shared with the ``grader`` fixture).
"""
