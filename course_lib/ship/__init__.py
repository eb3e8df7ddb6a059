"""Shipping a model: one self-contained folder (merged weights, tokenizer, settings, card), reloaded and served."""
