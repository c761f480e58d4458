"""The only package that imports ``tensorrt`` and ``pycuda``.

Everything here detects features with ``hasattr`` on the installed module (enum integers changed in
TensorRT 11, so none are stored), and raises :class:`trtbuild.errors.MissingDependencyError` with
install instructions when TensorRT or PyCUDA is absent or incomplete.
"""
