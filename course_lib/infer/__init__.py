"""Using a trained model: chat generation, decoding strategies, timing, retrieval."""
