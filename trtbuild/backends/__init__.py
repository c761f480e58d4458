"""Runners: one interface over TensorRT, ONNX Runtime and PyTorch (see base.Runner)."""
