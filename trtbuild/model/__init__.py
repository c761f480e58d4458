"""The ONNX side of trtbuild: loading, describing, checking and converting models (CPU only)."""
