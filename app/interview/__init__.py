"""Interview sessions: the engine that asks, grades, follows up and reports."""
