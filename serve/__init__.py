"""The recognizer on a Triton Inference Server for many cameras (``python -m serve``, ``serve.triton``)."""
