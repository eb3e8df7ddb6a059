"""Sakura Sushi, the running example: the menu, the generated data sets, the raw logs, its cleaning rules and scoring."""
