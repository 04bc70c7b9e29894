"""Deployment of the recognizer, the face expression CNN and the text model: ONNX export
(``onnx_export``), INT8 / FP16 variants (``quantize``), the parity gate against PyTorch (``parity``),
manifests (``manifest``) and a Triton model repository (``triton_repo``); ``artifacts`` ties export,
gate and manifest together and ``python -m export`` is the command line. The back-ends that run an
export are ``realtime.engines.onnx_engine`` and ``realtime.engines.trt_engine``."""
