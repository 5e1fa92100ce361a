"""Local Triton Inference Server for development and tests.

Runs the real ``tritonserver`` bundled in the ``nvidia-pytriton`` wheel on the CPU and
binds Python models to it: deterministic test models and a real chat model (a GGUF
served through llama-cpp-python). Clients talk to it with ``tritonclient`` exactly as they
would to a production Triton on GPUs.
"""
