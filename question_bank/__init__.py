"""The bundled question bank (YAML), shipped as package data of ``app.question_bank``."""
