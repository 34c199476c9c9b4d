"""Writing a trained run as a standalone model: ONNX or TorchScript files, a sidecar, the tokenizer."""
