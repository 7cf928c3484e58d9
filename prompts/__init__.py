"""The judge and follow-up prompt templates, shipped as package data of ``app.prompts``."""
