"""Export of the inference graph: ONNX, quantization and TensorRT engines (arrives with the export issue)."""
