"""Inference-only nets and their loaders: expression CNN, voice encoder, text encoder, sentence
encoder; ``weights`` and ``model_files`` read and check the shipped files. Training lives in ``realtime.offline``."""
