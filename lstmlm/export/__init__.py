"""Writing a trained run as a standalone model: ONNX or TorchScript files, a sidecar, the tokenizer."""

FORMATS = ("onnx", "torchscript")  # here, so that the CLI lists them without importing the writer
