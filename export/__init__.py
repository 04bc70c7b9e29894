"""Deployment of the recognizer and the face expression CNN: ONNX export (``onnx_export``),
INT8 / FP16 variants (``quantize``), the parity gate against PyTorch (``parity``), manifests
(``manifest``), the onnxruntime and TensorRT back-ends (``onnx_engine``, ``tensorrt``) and a Triton
model repository (``triton_repo``); ``artifacts`` ties export, gate and manifest together and
``python -m export`` is the command line."""
