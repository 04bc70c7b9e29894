"""Offline tools of the encoders: data readers, augmentation, training, evaluation and their CLIs."""
