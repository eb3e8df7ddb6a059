"""Generic data work: JSONL validation, cleaning steps that take their rules as arguments, chat formatting for training."""
