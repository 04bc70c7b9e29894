"""Live front-ends: sources, per-modality feature extraction and the sliding-window assembler."""
