"""Triton Python-backend models (``TritonPythonModel`` classes), one module per backend
named in models.yaml. They run inside Triton's Python backend stub."""
