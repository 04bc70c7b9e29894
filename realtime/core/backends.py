"""The engine back-ends ``--backend`` chooses from, importable without loading any of them."""

BACKENDS = ("torch", "onnx", "trt")
