"""colkern.colpali.heatmap: similarity maps on the patch grid (whole pages and tiled pages), the MaxSim
contribution map, and the PNGs drawn from them."""
import os

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import colkern
from colkern.colpali.heatmap import aggregate, overlay_heatmap, save_heatmap, save_token_heatmaps, similarity_maps

D = 16


def _rand(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(dtype)


# -- similarity_maps -----------------------------------------------------------------------------


def test_maps_put_patch_dot_products_on_the_grid():
    rows, cols = 3, 5
    q, page = _rand(4, D, seed=1), _rand(rows * cols, D, seed=2)
    maps = similarity_maps(q, page, (rows, cols))
    assert maps.shape == (4, rows, cols) and maps.dtype == torch.float32
    for i in range(4):
        for y in range(rows):
            for x in range(cols):
                expected = float(torch.dot(q[i].double(), page[y * cols + x].double()))
                assert maps[i, y, x].item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("tiles_grid", [(2, 2), 4, (1, 3), (2, 1)])
def test_tiles_go_back_to_their_place(tiles_grid):
    t_rows, t_cols = (2, 2) if tiles_grid == 4 else tiles_grid
    rows, cols = 2, 3
    q = _rand(3, D, seed=3)
    page = _rand(t_rows * t_cols * rows * cols, D, seed=4)
    maps = similarity_maps(q, page, (rows, cols), tiles_grid=tiles_grid)
    assert maps.shape == (3, t_rows * rows, t_cols * cols)
    for t in range(t_rows * t_cols):
        ty, tx = divmod(t, t_cols)  # tiles are row-major, like colkern.documents.pdf.tile_boxes
        for y in range(rows):
            for x in range(cols):
                patch = page[t * rows * cols + y * cols + x]
                assert torch.allclose(maps[:, ty * rows + y, tx * cols + x], q @ patch, atol=1e-5)


def test_tiles_grid_int_and_tuple_agree():
    q, page = _rand(2, D, seed=5), _rand(4 * 6, D, seed=6)
    assert torch.equal(similarity_maps(q, page, (2, 3), tiles_grid=4),
                       similarity_maps(q, page, (2, 3), tiles_grid=(2, 2)))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_give_fp32_of_the_upcast(dtype):
    q, page = _rand(3, D, seed=7, dtype=dtype), _rand(6, D, seed=8, dtype=dtype)
    maps = similarity_maps(q, page, (2, 3))
    assert maps.dtype == torch.float32
    assert torch.allclose(maps, (q.float() @ page.float().T).reshape(3, 2, 3), atol=1e-5)


@pytest.mark.parametrize("query,page,grid,kw,match", [
    (_rand(2, D), _rand(6, D + 1), (2, 3), {}, "dim"),
    (_rand(2, D), _rand(7, D), (2, 3), {}, "7 patches"),
    (_rand(2, D), _rand(6, D), (2, 3), {"tiles_grid": 4}, "4 tiles"),
    (_rand(2, D), _rand(6, D), (2, 3), {"tiles_grid": 3}, "square"),
    (_rand(2, D), _rand(6, D), (0, 6), {}, "grid"),
    (_rand(2, D), _rand(6, D), (2, 3, 1), {}, "grid"),
    (_rand(0, D), _rand(6, D), (2, 3), {}, "no tokens"),
    (_rand(1, 2, D), _rand(6, D), (2, 3), {}, "query"),
    (_rand(2, D), _rand(1, 6, D), (2, 3), {}, "page"),
    (torch.ones(2, D, dtype=torch.int64), _rand(6, D), (2, 3), {}, "float"),
    (np.ones((2, D)), _rand(6, D), (2, 3), {}, "query"),
])
def test_similarity_maps_bad_input(query, page, grid, kw, match):
    with pytest.raises(ValueError, match=match):
        similarity_maps(query, page, grid, **kw)


# -- aggregate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lq,grid,tiles_grid", [(1, (1, 1), None), (5, (4, 4), None), (7, (3, 5), 4),
                                                (32, (8, 8), None)])
def test_contribution_map_sums_to_the_maxsim_score(lq, grid, tiles_grid):
    n = grid[0] * grid[1] * (4 if tiles_grid else 1)
    q, page = _rand(lq, D, seed=lq), _rand(n, D, seed=lq + 100)
    contrib = aggregate(similarity_maps(q, page, grid, tiles_grid=tiles_grid), "sum_of_max")
    score = colkern.maxsim_ref(q[None], [page])[0, 0]
    assert contrib.sum().item() == pytest.approx(score.item(), rel=1e-5, abs=1e-4)
    assert int((contrib != 0).sum()) <= lq  # at most one patch per token


def test_contribution_map_by_hand():
    # Two tokens peak on patch (0, 1), the third on patch (1, 0).
    page = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])  # grid 2 x 2, row-major
    q = torch.tensor([[2.0, 0.0], [3.0, 1.0], [0.0, 4.0]])
    contrib = aggregate(similarity_maps(q, page, (2, 2)), "sum_of_max")
    expected = torch.zeros(2, 2)
    expected[0, 1] = 2.0 + 3.0           # <q0, p1> = 2, <q1, p1> = 3 (vs <q1, p3> = 2)
    expected[1, 0] = 4.0                 # <q2, p2> = 4
    assert torch.equal(contrib, expected)


def test_contribution_tie_goes_to_the_first_patch():
    page = torch.tensor([[1.0], [1.0], [0.5]])
    contrib = aggregate(similarity_maps(torch.tensor([[2.0]]), page, (1, 3)), "sum_of_max")
    assert contrib.tolist() == [[2.0, 0.0, 0.0]]


def test_max_map_is_the_best_token_per_patch():
    maps = _rand(6, 3, 4, seed=9)
    heat = aggregate(maps, "max")
    for y in range(3):
        for x in range(4):
            assert heat[y, x].item() == max(maps[i, y, x].item() for i in range(6))
    assert torch.equal(aggregate(maps), heat)  # "max" is the default


@pytest.mark.parametrize("maps,how,match", [
    (_rand(2, 3, 4), "mean", "how"),
    (_rand(3, 4), "max", r"\[Lq, R, C\]"),
    (torch.zeros(0, 3, 4), "sum_of_max", "Lq >= 1"),
])
def test_aggregate_bad_input(maps, how, match):
    with pytest.raises(ValueError, match=match):
        aggregate(maps, how)


# -- pictures ------------------------------------------------------------------------------------


def _page(width=90, height=130, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _leftovers(directory):
    return [f for f in os.listdir(directory) if f.endswith(".tmp")]


def test_save_heatmap_writes_a_png_of_the_page_size(tmp_path):
    page = _page()
    heat = _rand(8, 6, seed=10)
    out = save_heatmap(page, heat, tmp_path / "heat.png", title="q1: score 12.5")
    assert out == os.fspath(tmp_path / "heat.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == page.size
        img.verify()
    with Image.open(out) as img:
        written = np.asarray(img.convert("RGB"))
    assert not np.array_equal(written, np.asarray(page))
    assert _leftovers(tmp_path) == []


def test_overlay_colours_follow_the_map_orientation():
    # Heat 1 in the top-left patch only: with alpha 1 and one block per patch, that block shows
    # the colormap's top colour and the rest its bottom colour.
    page = _page(60, 40)
    heat = torch.zeros(2, 3)
    heat[0, 0] = 1.0
    out = np.asarray(overlay_heatmap(page, heat, alpha=1.0, interpolation="nearest", cmap="viridis"))
    top = np.round(np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255)
    bottom = np.round(np.array(matplotlib.colormaps["viridis"](0.0)[:3]) * 255)
    assert (out[:20, :20] == top).all()                     # patch (0, 0) covers 20 x 20 pixels
    assert (out[20:, :] == bottom).all() and (out[:, 20:] == bottom).all()


def test_overlay_alpha_zero_is_the_page_and_blend_is_linear():
    page = _page(30, 20)
    heat = _rand(2, 3, seed=11)
    assert np.array_equal(np.asarray(overlay_heatmap(page, heat, alpha=0.0)), np.asarray(page))
    full = np.asarray(overlay_heatmap(page, heat, alpha=1.0)).astype(np.float64)
    half = np.asarray(overlay_heatmap(page, heat, alpha=0.5)).astype(np.float64)
    expected = 0.5 * np.asarray(page, dtype=np.float64) + 0.5 * full
    assert np.abs(half - expected).max() <= 1.0  # rounding of the two 8-bit images


def test_title_is_drawn_inside_the_top_band():
    page = _page(200, 300)
    heat = _rand(4, 4, seed=12)
    plain = np.asarray(overlay_heatmap(page, heat))
    titled = np.asarray(overlay_heatmap(page, heat, title="hello"))
    assert titled.shape == plain.shape
    changed_rows = np.nonzero((titled != plain).any(axis=(1, 2)))[0]
    assert changed_rows.size > 0 and changed_rows.max() < 300 // 4


def test_constant_map_and_explicit_range():
    page = _page(20, 20)
    out = overlay_heatmap(page, torch.full((2, 2), 3.0), alpha=1.0)
    low = np.round(np.array(matplotlib.colormaps["jet"](0.0)[:3]) * 255)
    assert (np.asarray(out) == low).all()
    clipped = overlay_heatmap(page, torch.full((2, 2), 3.0), alpha=1.0, vmin=0.0, vmax=1.0)
    high = np.round(np.array(matplotlib.colormaps["jet"](1.0)[:3]) * 255)
    assert (np.asarray(clipped) == high).all()


def test_save_heatmap_replaces_atomically(tmp_path, monkeypatch):
    target = tmp_path / "heat.png"
    target.write_bytes(b"old contents")
    page, heat = _page(), _rand(3, 3, seed=13)

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_heatmap(page, heat, target)
    assert target.read_bytes() == b"old contents" and _leftovers(tmp_path) == []
    monkeypatch.undo()
    save_heatmap(page, heat, target)
    with Image.open(target) as img:
        assert img.size == page.size


@pytest.mark.parametrize("heat,kw,exc,match", [
    (torch.tensor([[0.0, float("nan")]]), {}, ValueError, "NaN"),
    (torch.zeros(2, 2, 2), {}, ValueError, "2-D"),
    (torch.zeros(2, 2), {"alpha": 1.5}, ValueError, "alpha"),
    (torch.zeros(2, 2), {"cmap": "no-such-map"}, ValueError, "colormap"),
    (torch.zeros(2, 2), {"interpolation": "cubic"}, ValueError, "interpolation"),
    (torch.zeros(2, 2), {"vmin": 2.0, "vmax": 1.0}, ValueError, "vmax"),
])
def test_save_heatmap_bad_input(tmp_path, heat, kw, exc, match):
    with pytest.raises(exc, match=match):
        save_heatmap(_page(), heat, tmp_path / "x.png", **kw)
    assert os.listdir(tmp_path) == []


def test_save_heatmap_needs_an_image_and_a_directory(tmp_path):
    with pytest.raises(TypeError, match="PIL"):
        save_heatmap(np.zeros((4, 4, 3)), torch.zeros(2, 2), tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_heatmap(_page(), torch.zeros(2, 2), tmp_path / "missing" / "x.png")


def test_save_token_heatmaps(tmp_path):
    page = _page(90, 130)
    q, emb = _rand(5, D, seed=14), _rand(4 * 4, D, seed=15)
    maps = similarity_maps(q, emb, (2, 2), tiles_grid=4)
    out = save_token_heatmaps(page, maps, tmp_path / "tokens.png", tokens=list("abcde"), ncols=3,
                              panel_px=64, title="query")
    with Image.open(out) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(out) as img:
        w, h = img.size
    # 3 columns x 2 rows of panels at least 64 px tall, 64 * 90/130 px wide.
    assert w >= 3 * 44 and h >= 2 * 64
    assert _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="2 tokens given for 5 maps"):
        save_token_heatmaps(page, maps, tmp_path / "t2.png", tokens=["a", "b"])
    with pytest.raises(ValueError, match="ncols"):
        save_token_heatmaps(page, maps, tmp_path / "t3.png", ncols=0)
