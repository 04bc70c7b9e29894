"""Inference-only nets and their loaders: expression CNN (and its input, ``face_crop``), voice encoder,
text encoder, sentence encoder, the GE2E speaker network (numpy); ``weights``, ``sidecar`` and
``model_files`` read and check the shipped files. Training lives in ``realtime.offline``."""
