"""Training loops and trainers: pretraining from scratch, supervised fine-tuning."""
