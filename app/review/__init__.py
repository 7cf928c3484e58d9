"""The reviewer's side: flagged turns, score overrides, exports to the eval gold set."""
