"""Measuring models: offline evaluate metrics, answer scoring on held-out questions, the course-wide scoreboard."""
