"""Triton GPU kernels, installed as colkern.triton_kernels; imported only for CUDA tensors
(or by tests running them under TRITON_INTERPRET=1)."""
