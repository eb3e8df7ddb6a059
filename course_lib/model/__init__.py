"""The transformer, piece by piece and from scratch: tokenizers, positions, attention, the decoder, mixture of experts."""
