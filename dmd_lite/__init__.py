"""DMD (Decoupled Multimodal Distilling, CVPR 2023): model, objective, training and evaluation."""
