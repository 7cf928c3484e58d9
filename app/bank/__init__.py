"""The question bank: YAML files of questions with rubrics, follow-ups and hints."""
