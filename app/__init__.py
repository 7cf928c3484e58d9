"""mockinterview: a mock technical interviewer that grades free-text answers."""
