"""Notebook tooling: executing, checking, syncing and publishing the lessons."""
