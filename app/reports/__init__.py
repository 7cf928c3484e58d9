"""End-of-session feedback reports."""
