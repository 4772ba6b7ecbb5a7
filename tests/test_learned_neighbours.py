"""Hash-grid proximity edges agree with the brute-force all-pairs definition."""

import torch

from physground.learned.neighbours import radius_edges


def _brute(x: torch.Tensor, radius: float, present: torch.Tensor | None) -> set:
    close = torch.cdist(x, x) < radius
    close &= ~torch.eye(x.shape[1], dtype=torch.bool)
    if present is not None:
        close &= present[:, :, None] & present[:, None, :]
    b, i, j = close.nonzero().unbind(-1)  # i receiver... both orders present: symmetric
    return set(zip(b.tolist(), j.tolist(), i.tolist(), strict=True))


def test_radius_edges_match_all_pairs_in_2d_and_3d_with_padding():
    gen = torch.Generator().manual_seed(0)
    for d in (2, 3):
        x = torch.rand(5, 120, d, generator=gen)
        present = torch.rand(5, 120, generator=gen) > 0.25
        for mask in (None, present):
            edges = radius_edges(x, 0.15, mask)
            got = set(map(tuple, edges.tolist()))
            assert len(got) == len(edges)  # no duplicates
            assert got == _brute(x, 0.15, mask)
            assert len(got) > 100  # the case is not trivially empty


def test_radius_edges_never_cross_systems():
    x = torch.zeros(3, 4, 2)  # every system on one point: all pairs within, none across
    edges = radius_edges(x, 0.1)
    assert len(edges) == 3 * 4 * 3
    assert set(edges[:, 0].tolist()) == {0, 1, 2}
