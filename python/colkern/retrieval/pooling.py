"""Token pooling: fewer vectors per page before indexing, for a small loss in retrieval quality.

    pooled = pool_tokens(docs, factor=2)                                   # hierarchical
    pooled = pool_tokens(docs, factor=4, method="grid", grid=(32, 32))     # 2x2 patch blocks
    pooled = pool_tokens(docs, factor=2, method="grid", grid=(32, 32), shape="rows")

"hierarchical" reproduces colpali-engine's HierarchicalTokenPooler (0.3.18), ties aside. That
pooler does not run Ward on cosine distances: it hands scipy the square matrix X = 1 - E E^T as
*observations*, so scipy clusters the rows of X, L-dimensional points, by Ward with Euclidean
distance, and cuts the tree at max(L // factor, 1) clusters. Rows differ by
x_i - x_j = E (e_j - e_i), so |x_i - x_j|^2 = (e_i - e_j)^T G (e_i - e_j) with G = E^T E: the
same distances cost O(L^2 D) from E and G, where scipy spends O(L^3) on them.

The pages of a batch are clustered together: one fp64 matmul gives every page's distance
matrix, then all pages make their merges in lockstep, one merge per page per step, each
step a handful of torch ops on [pages, L] rows (the Lance-Williams update of Ward, as scipy
does in fp64, and nearest neighbours kept per cluster). Batches run on
torch.get_num_threads() worker threads, one single-threaded batch each. Greedy closest-pair merging makes the
merges of scipy's nearest-neighbour chain in height order (Ward is reducible), so its first
L - t merges are scipy's cut at t clusters. Differences from scipy: height ties may group
differently (tokens that differ by rounding only are equal here); clusters come in the order
of their first token, where colpali-engine lists them in dendrogram order (MaxSim does not
depend on the order).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..ops import FLOAT_DTYPES, PackedDocs

METHODS = ("hierarchical", "grid")
GRID_SHAPES = ("square", "rows", "cols")

# Entries of the fp64 distance matrices of the batches of pages in work at once (576 MiB:
# 64 ColPali pages). Each merge step costs a few torch ops whatever the batch, so larger
# batches amortise them: measured per page, 64 pages took 0.6x the time of 4.
_BATCH_ENTRIES = 72 << 20
# Squared distances below this fraction of the largest squared norm are rounding noise of the
# fp64 Gram expansion (about 1e-14 of it): such tokens are equal, merged at height 0, as scipy
# merges duplicate tokens at height 0.
_ZERO_REL = 1e-12

PoolInput = Union[Sequence[Tensor], PackedDocs]


def pool_tokens(docs: PoolInput, factor: int = 2, method: str = "hierarchical", *,
                grid: Optional[Tuple[int, int]] = None, shape: Union[str, Tuple[int, int]] = "square",
                normalize: bool = True) -> Union[List[Tensor], PackedDocs]:
    """Pools each page's vectors into about 1/factor as many.

    docs: a list of [L_i, D] tensors or a PackedDocs (values [T, D] + offsets [N+1] int64);
      float32 / float16 / bfloat16. Empty pages are allowed and stay empty.
    factor: int >= 1; 1 returns the pages unchanged (copies), as colpali-engine does.
    method:
      "hierarchical": Ward clustering as colpali-engine's HierarchicalTokenPooler (see the
        module docstring), max(L_i // factor, 1) clusters per page (fewer only where tokens
        tie exactly), each replaced by the mean of its members; clusters in the order of
        their first token.
      "grid": pages are a row-major patch grid (rows, cols) = `grid`; each block of
        `shape` patches is replaced by its mean, blocks in row-major order. shape "square"
        is a k x k block (factor = k * k), "rows" 1 x factor (neighbours in a row), "cols"
        factor x 1, or an explicit (block_rows, block_cols) whose product is factor. Blocks
        at the bottom and right edges hold what is left of the grid:
        ceil(rows / block_rows) * ceil(cols / block_cols) vectors per page.
    normalize: L2-normalise each pooled vector (ColPali and ColBERT vectors are unit-norm, and
      the mean of unit vectors is shorter than one).
    -> the same container as docs: a list of [M_i, D] tensors (views of one packed tensor) or
       a PackedDocs; docs' dtype, means accumulated in fp32.
    """
    if isinstance(factor, bool) or not isinstance(factor, int):
        raise TypeError(f"pool_tokens: factor must be an int >= 1, got {factor!r}")
    if factor < 1:
        raise ValueError(f"pool_tokens: factor must be an int >= 1, got {factor}")
    if method not in METHODS:
        raise ValueError(f"pool_tokens: method must be one of {METHODS}, got {method!r}")
    if method != "grid" and (grid is not None or shape != "square"):
        raise ValueError("pool_tokens: grid and shape are for method='grid' only")
    block = _grid_block(factor, grid, shape) if method == "grid" else None

    packed, as_list = _as_packed(docs)
    values, offsets = packed.values, packed.offsets
    if factor == 1:
        out = PackedDocs(values.clone(), offsets.clone())
    else:
        values32 = values.float()
        lengths = offsets[1:] - offsets[:-1]
        if method == "grid":
            pooled, counts = _grid_means(values32, lengths, grid, block)
        else:
            pooled, counts = _segment_means(values32, *_hierarchical_labels(values32, lengths, factor))
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        new_offsets = torch.zeros_like(offsets)
        torch.cumsum(counts, 0, out=new_offsets[1:])
        out = PackedDocs(pooled.to(values.dtype), new_offsets)
    if not as_list:
        return out
    return list(out.values.split(out.lengths.tolist())) if len(out) else []


def _as_packed(docs: PoolInput) -> Tuple[PackedDocs, bool]:
    """-> (docs packed, whether they came as a list), with the argument checks."""
    if isinstance(docs, PackedDocs):
        v, o = docs.values, docs.offsets
        if not isinstance(v, Tensor) or v.dim() != 2:
            raise ValueError(f"pool_tokens: docs.values must be [T, D], got {tuple(getattr(v, 'shape', ()))}")
        if not isinstance(o, Tensor) or o.dtype != torch.int64 or o.dim() != 1 or o.numel() < 1:
            raise ValueError("pool_tokens: docs.offsets must be a 1-D int64 tensor [N+1]")
        if int(o[0]) != 0 or int(o[-1]) != v.shape[0] or bool((o[1:] < o[:-1]).any()):
            raise ValueError(f"pool_tokens: docs.offsets must rise from 0 to {v.shape[0]} (the rows of "
                             f"docs.values), got first {int(o[0])}, last {int(o[-1])}")
        _check_dtype(v.dtype, "docs.values")
        return PackedDocs(v.contiguous(), o), False
    if isinstance(docs, Tensor) or not isinstance(docs, (list, tuple)):
        raise TypeError(f"pool_tokens: docs must be a list of [L_i, D] tensors or a PackedDocs, "
                        f"got {type(docs).__name__}")
    if not docs:
        return PackedDocs(torch.empty(0, 0), torch.zeros(1, dtype=torch.int64)), True
    first = docs[0]
    for i, d in enumerate(docs):
        if not isinstance(d, Tensor) or d.dim() != 2:
            got = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
            raise ValueError(f"pool_tokens: docs[{i}] must be a 2-D [L, D] tensor, got {got}")
        _check_dtype(d.dtype, f"docs[{i}]")
        if d.shape[1] != first.shape[1]:
            raise ValueError(f"pool_tokens: docs[{i}] has dim {d.shape[1]} but docs[0] has dim {first.shape[1]}")
        if d.dtype != first.dtype or d.device != first.device:
            raise ValueError(f"pool_tokens: docs[{i}] is {d.dtype} on {d.device} but docs[0] is "
                             f"{first.dtype} on {first.device}")
    lengths = torch.tensor([d.shape[0] for d in docs], dtype=torch.int64)
    offsets = torch.zeros(len(docs) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    return PackedDocs(torch.cat(list(docs)).contiguous(), offsets.to(first.device)), True


def _check_dtype(dtype: torch.dtype, name: str) -> None:
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"pool_tokens: {name} must be float32, float16 or bfloat16, got {dtype}")


def _grid_block(factor: int, grid, shape) -> Tuple[int, int]:
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in grid)):
        raise ValueError(f"pool_tokens: method='grid' needs grid=(rows, cols), two ints >= 1, got {grid!r}")
    if shape == "rows":
        return 1, factor
    if shape == "cols":
        return factor, 1
    if shape == "square":
        k = math.isqrt(factor)
        if k * k != factor:
            raise ValueError(f"pool_tokens: shape='square' needs a square factor (4, 9, ...), got {factor}; "
                             f"pass shape='rows', 'cols' or (block_rows, block_cols)")
        return k, k
    if (isinstance(shape, (tuple, list)) and len(shape) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)):
        if shape[0] * shape[1] != factor:
            raise ValueError(f"pool_tokens: shape {tuple(shape)} holds {shape[0] * shape[1]} patches, "
                             f"but factor is {factor}")
        return int(shape[0]), int(shape[1])
    raise ValueError(f"pool_tokens: shape must be one of {GRID_SHAPES} or (block_rows, block_cols), got {shape!r}")


def _grid_means(values: Tensor, lengths: Tensor, grid: Tuple[int, int], block: Tuple[int, int]):
    """-> (block means [N * blocks, D] fp32, blocks per page [N]): one reshape and one sum."""
    (R, C), (br, bc) = grid, block
    N, D = lengths.numel(), values.shape[1]
    wrong = torch.nonzero(lengths != R * C)
    if wrong.numel():
        i = int(wrong[0])
        raise ValueError(f"pool_tokens: grid={tuple(grid)} means {R * C} patches per page, but page {i} has "
                         f"{int(lengths[i])} vectors (select the image patches first, e.g. with the "
                         f"processor's image mask)")
    Rb, Cb = -(-R // br), -(-C // bc)
    x = values.view(N, R, C, D)
    if Rb * br != R or Cb * bc != C:  # zero rows and columns complete the edge blocks
        x = torch.nn.functional.pad(x, (0, 0, 0, Cb * bc - C, 0, Rb * br - R))
    sums = x.view(N, Rb, br, Cb, bc, D).sum((2, 4))
    rows_in = torch.clamp(R - torch.arange(Rb, device=values.device) * br, max=br)
    cols_in = torch.clamp(C - torch.arange(Cb, device=values.device) * bc, max=bc)
    count = (rows_in[:, None] * cols_in[None, :]).to(values.dtype)
    means = (sums / count[None, :, :, None]).reshape(N * Rb * Cb, D)
    return means, torch.full((N,), Rb * Cb, dtype=torch.int64, device=values.device)


def _segment_means(values: Tensor, cluster: Tensor, counts: Tensor):
    """values [T, D] fp32, cluster [T] ids numbered page after page -> (means, counts)."""
    total = int(counts.sum())
    sums = torch.zeros(total, values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, cluster, values)
    size = torch.bincount(cluster, minlength=total).to(values.dtype)
    return sums / size[:, None], counts


def _hierarchical_labels(values: Tensor, lengths: Tensor, factor: int) -> Tuple[Tensor, Tensor]:
    """-> (cluster id [T] of every token, numbered page after page; clusters per page [N])."""
    N, dev = lengths.numel(), values.device
    starts = torch.cumsum(lengths, 0) - lengths
    workers = max(1, torch.get_num_threads()) if dev.type == "cpu" else 1
    # Batches of pages of similar length (a batch is padded to its longest), as even as the
    # memory budget allows, so that each worker gets the same work.
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    lens = lengths.tolist()
    plans, i = [], 0
    while i < N and lens[order[i]] > 0:
        L, rest = lens[order[i]], N - i
        most = max(1, _BATCH_ENTRIES // (workers * L * L))
        n = -(-rest // (workers * -(-rest // (workers * most))))
        for _ in range(workers):  # one batch per worker at this size
            if i < N and lens[order[i]] > 0:
                plans.append(order[i:i + n])
                i += n

    def run(plan: List[int], own_thread: bool):
        if own_thread:
            # The merge loop is thousands of small ops: OpenMP teams per op cost more than they
            # gain, so each worker runs single-threaded on its own batches (the setting is
            # per thread under OpenMP, so the caller's is untouched).
            torch.set_num_threads(1)
        pages = torch.tensor(plan, device=dev)
        pages = pages[lengths[pages] > 0]
        plen = lengths[pages]
        pos = torch.arange(int(plen.max()), device=dev)
        valid = pos[None, :] < plen[:, None]
        rows = torch.where(valid, starts[pages][:, None] + pos[None, :], 0)
        merges = plen - torch.clamp(plen // factor, min=1)
        labels, n_clusters = _ward_batch(values[rows] * valid[..., None], plen, merges)
        return pages, rows[valid], labels[valid], n_clusters, plen

    if workers > 1 and len(plans) > 1:
        with ThreadPoolExecutor(workers) as pool:
            batches = list(pool.map(run, plans, [True] * len(plans)))
    else:
        batches = [run(plan, False) for plan in plans]
    cluster = torch.empty(values.shape[0], dtype=torch.int64, device=dev)
    counts = torch.zeros(N, dtype=torch.int64, device=dev)
    for pages, _, _, n_clusters, _ in batches:
        counts[pages] = n_clusters
    base = torch.cumsum(counts, 0) - counts
    for pages, rows, labels, _, plen in batches:
        cluster[rows] = torch.repeat_interleave(base[pages], plen) + labels
    return cluster, counts


def _ward_batch(E: Tensor, lengths: Tensor, k: Tensor) -> Tuple[Tensor, Tensor]:
    """Ward clusters of B zero-padded pages E [B, L, D] fp32 after k [B] merges (more where the
    next merges tie with the k-th, as scipy's fcluster takes them).

    -> (labels [B, L] int64 in order of first token, -1 on padding; clusters per page [B])."""
    B, L, D = E.shape
    dev = E.device
    # Pages in decreasing order of merges: the pages still merging at a step are a prefix,
    # and every step works on views of it.
    order = torch.argsort(k, descending=True)
    E, lengths, k = E[order], lengths[order], k[order]
    valid = torch.arange(L, device=dev)[None, :] < lengths[:, None]
    W = _ward_distances(E, valid)
    size = valid.to(torch.float64)
    parent = torch.arange(L, device=dev).repeat(B, 1)
    nn_w, nn = W.min(2)
    offsets = torch.arange(max(B, L), device=dev) * L
    last = torch.full((B,), -math.inf, dtype=torch.float64, device=dev)
    n, k_list = B, k.tolist()
    for step in range(k_list[0] if B else 0):
        while k_list[n - 1] <= step:
            n -= 1
        last[:n] = _merge_step(W[:n], size[:n], parent[:n], nn_w[:n], nn[:n], offsets)
    while True:  # merges at the height of the k-th one: scipy's cut takes them too
        tied = torch.nonzero((k > 0) & (nn_w.amin(1) <= last)).flatten()
        if tied.numel() == 0:
            break
        state = [W[tied], size[tied], parent[tied], nn_w[tied], nn[tied]]
        _merge_step(*state, offsets)
        for full, part in zip((W, size, parent, nn_w, nn), state):
            full[tied] = part
    while True:
        up = parent.gather(1, parent)
        if torch.equal(up, parent):
            break
        parent = up
    # Every merge keeps the smaller index, so a cluster's root is its first token.
    root = (parent == torch.arange(L, device=dev)) & valid
    labels = torch.where(valid, (root.cumsum(1) - 1).gather(1, parent), -1)
    back = torch.argsort(order)
    return labels[back], root.sum(1)[back]


def _ward_distances(E: Tensor, valid: Tensor) -> Tensor:
    """E [B, L, D] fp32, zero on padding -> [B, L, L] fp64 squared distances |e_i - e_j|_G^2
    (G = E^T E, see the module docstring), each page scaled to a largest |e|_G^2 near 1; inf
    on the diagonal and padding; 0 where they differ by rounding only."""
    B, L, D = E.shape
    # One matmul gives them: [e, |e|^2, 1] . [-2Ge, 1, |e|^2]. |e|^2 = inf on padding puts its
    # rows and columns at inf (no 0 * inf: the factor it meets is the 1).
    left = torch.empty(B, L, D + 2, dtype=torch.float64, device=E.device)
    left[..., :D] = E
    e = left[..., :D]
    G = e.transpose(1, 2) @ e
    GE = e @ G
    q = torch.linalg.vecdot(GE, e)
    # Ward's tree does not change when a page is scaled; at one scale one rounding threshold
    # serves the whole batch.
    scale = 1 / q.amax(1).clamp_min(1e-300)[:, None]
    q = torch.where(valid, q, math.inf)
    left[..., D], left[..., D + 1] = q, 1.0
    right = torch.empty_like(left)
    torch.mul(GE, -2 * scale[..., None], out=right[..., :D])
    right[..., D], right[..., D + 1] = scale, q * scale
    W = torch.bmm(left, right.transpose(1, 2))
    torch.nn.functional.threshold_(W, _ZERO_REL, 0.0)
    W.diagonal(dim1=1, dim2=2).fill_(math.inf)
    return W


def _merge_step(W: Tensor, size: Tensor, parent: Tensor, nn_w: Tensor, nn: Tensor, offsets: Tensor) -> Tensor:
    """Merges the closest pair of clusters of each page in place -> the merges' heights.

    W [n, L, L] (contiguous): Ward distances between clusters (2x scipy's squared ones) by
    the Lance-Williams update, valid between live clusters only (a merged-away cluster's row
    and column go stale: every minimum masks them); size [n, L] (0: merged away); nn_w, nn
    [n, L]: each cluster's nearest neighbour; offsets: arange(max(n, L)) * L."""
    n, L = nn_w.shape
    rows = W.view(n * L, L)
    base, col = offsets[:n], offsets[:L]
    height, i = nn_w.min(1)
    j = nn.gather(1, i[:, None])[:, 0]
    a, c = torch.minimum(i, j), torch.maximum(i, j)
    Wa, Wc = rows.index_select(0, base + a), rows.index_select(0, base + c)
    na, nc = size.gather(1, a[:, None]), size.gather(1, c[:, None])
    # Lance-Williams for Ward: d(k, a+c) = ((na+nk) d(k,a) + (nc+nk) d(k,c) - nk d(a,c)) / (na+nc+nk)
    new = (Wa + Wc).sub_(Wa.gather(1, c[:, None])).mul_(size).addcmul_(Wa, na).addcmul_(Wc, nc)
    new.div_(size + (na + nc))
    size.scatter_add_(1, a[:, None], nc).scatter_(1, c[:, None], 0.0)
    parent.scatter_(1, c[:, None], a[:, None])
    dead = size == 0
    new.masked_fill_(dead, math.inf)
    rows.index_copy_(0, base + a, new)
    cols = (base * L + a)[:, None] + col[None, :]
    W.view(-1).scatter_(0, cols.flatten(), new.flatten())
    # Ward is reducible: a merged cluster is no nearer to anyone than its nearer part, so only
    # the clusters whose nearest neighbour merged (and the merged one) need a new one.
    stale = (nn == a[:, None]) | (nn == c[:, None])
    stale.masked_fill_(dead, False).scatter_(1, a[:, None], True)
    p, r = stale.nonzero(as_tuple=True)
    rw, rn = rows.index_select(0, base[p] + r).masked_fill_(dead[p], math.inf).min(1)
    nn_w.scatter_(1, c[:, None], math.inf)
    nn_w[p, r] = rw
    nn[p, r] = rn
    return height


def pool_tokens_ref(docs: Sequence[Tensor], factor: int = 2, normalize: bool = True) -> List[Tensor]:
    """colpali-engine's hierarchical pooling with scipy, page by page (needs scipy): the
    reference for tests and the baseline of benchmarks. Clusters in order of first token."""
    import warnings

    from scipy.cluster.hierarchy import fcluster, linkage

    out = []
    for page in docs:
        x = page.float()
        L = x.shape[0]
        if factor == 1 or L < 2:
            labels = torch.arange(L)
        else:
            with warnings.catch_warnings():  # scipy suspects X of being a distance matrix: it is not read as one
                warnings.simplefilter("ignore")
                Z = linkage(1 - (x @ x.T).numpy(), metric="euclidean", method="ward")
            raw = torch.from_numpy(fcluster(Z, t=max(L // factor, 1), criterion="maxclust")).long()
            _, first = torch.unique(raw, return_inverse=True)
            order = torch.full((int(first.max()) + 1,), L).scatter_reduce(0, first, torch.arange(L), "amin")
            labels = torch.argsort(torch.argsort(order))[first]
        if factor == 1:
            out.append(page.clone())
            continue
        n = int(labels.max()) + 1 if L else 0
        means = torch.zeros(n, x.shape[1]).index_add_(0, labels, x) / torch.bincount(labels, minlength=n)[:, None]
        out.append((torch.nn.functional.normalize(means, dim=1) if normalize else means).to(page.dtype))
    return out
