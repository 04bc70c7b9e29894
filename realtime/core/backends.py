"""The engine contract, importable without loading any engine: the back-ends ``--backend`` chooses
from, and the named inputs every engine takes (a window's arrays, batch first) and the named
outputs it gives."""

BACKENDS = ("torch", "onnx", "trt", "fused")
PRECISIONS = ("float32", "tf32", "float16", "bfloat16")  # the fused back-end's matrix arithmetic
INPUTS = ("visual", "visual_mask", "audio", "audio_mask", "text", "text_mask")
OUTPUTS = ("probabilities", "valence", "edges_homo", "edges_hetero", "voice_reliability")

# The recognizer on a Triton server (``python -m serve``; ``--server grpc://HOST:PORT``): the model's name
# there, and the outputs that are one value a window, (B,) from an engine and (B, 1) on the wire.
SERVED_MODEL = "dmd_recognizer"
SCALAR_OUTPUTS = ("valence", "voice_reliability")
