"""Front-ends: per-modality features from captured media: face (landmarks, alignment, expression),
voice, words (tokenizer, text front-end) and speech recognition (``asr``)."""
