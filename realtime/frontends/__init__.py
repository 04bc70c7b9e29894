"""Front-ends: per-modality features from captured media: face (landmarks, alignment, expression),
voice (``mel``, ``vad``, ``pitch``, ``ge2e`` steps, put together by ``voice``), words (``text_frontend``)
and speech recognition (``asr``)."""
