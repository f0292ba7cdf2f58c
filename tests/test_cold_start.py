"""Cold start: the first eager call of each op must not import torch._dynamo (seconds of import,
paid by every short-lived process such as the CLI) or Triton (CUDA work only).

torch.library.custom_op wraps kernels in torch._disable_dynamo, which imports torch._dynamo on
the first call; colkern/ops/_registry.py registers the kernels on a Library instead. Run in a
fresh interpreter, since any earlier test may have imported those modules already.
"""
import subprocess
import sys

CALL_EVERY_OP = """
import sys

import torch

import colkern

Q = torch.randn(2, 3, 16)
docs = [torch.randn(5, 16), torch.randn(2, 16)]
colkern.maxsim(Q, docs)
colkern.maxsim_topk(Q, docs, 1)
docs_bits, Q_bits = colkern.pack_bits(docs), colkern.pack_bits(Q)
colkern.maxsim_bits(Q, docs_bits, dim=16)
colkern.maxsim_bits_topk(Q, docs_bits, 1, dim=16)
colkern.maxsim_hamming(Q_bits, docs_bits, dim=16)
colkern.maxsim_hamming_topk(Q_bits, docs_bits, 1, dim=16)
x = torch.randn(2, 4, 16, requires_grad=True)
colkern.patch_pool(x).sum().backward()
print(sorted(m for m in ("torch._dynamo", "triton") if m in sys.modules))
"""


def test_first_eager_calls_import_neither_dynamo_nor_triton():
    out = subprocess.run([sys.executable, "-c", CALL_EVERY_OP], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip() == "[]", f"imported by the first op calls: {out.stdout.strip()}"
