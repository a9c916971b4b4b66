"""Local operators on the sphere: the spherical DISCO convolution is torch-harmonics' operator
(applied by an FFT in longitude, on any grid with the same weights), and the SFNO with DISCO
branches is neuraloperator's SFNO plus those branches, rebuilt from its record."""

import math

import pytest
import torch

from fem_ms_torch.operators import LocalSFNO, SphericalDiscoConv
from fem_ms_torch.registry import build_model, model_from_record, model_record, plain_state_dict


@pytest.mark.parametrize("shape", [(8, 16), (16, 32), (17, 34)])
def test_spherical_disco_is_torch_harmonics_operator(shape):
    torch.manual_seed(0)
    conv = SphericalDiscoConv(3, 4, theta_cutoff=0.4)
    x = torch.randn(2, 3, *shape)
    with torch.no_grad():
        expected = conv.reference(shape)(x)
        got = conv(x)
    assert got.shape == (2, 4, *shape)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_spherical_disco_is_one_operator_at_two_resolutions():
    """The same weights on a grid and on its refinement: for a smooth input (a low-degree
    spherical harmonic), the outputs agree at the shared latitude band up to the quadrature's
    error, which shrinks under refinement; an unscaled stencil would not (its support would halve)."""
    torch.manual_seed(0)
    conv = SphericalDiscoConv(1, 1, theta_cutoff=0.8)

    def field(nlat, nlon):
        from torch_harmonics.quadrature import clenshaw_curtiss_weights

        cost, _ = clenshaw_curtiss_weights(nlat, -1, 1)
        lat = -torch.arcsin(cost).float()
        lon = torch.arange(nlon) * (2 * math.pi / nlon)
        return (torch.cos(lat)[:, None] * torch.cos(lon)[None, :] + torch.sin(lat)[:, None] ** 2)[None, None]

    with torch.no_grad():
        coarse, fine, finer = (conv(field(n, 2 * n - 2)) for n in (17, 33, 65))
    # equiangular grids with poles: latitude i of 17 is latitude 2i of 33 and 4i of 65; longitude j is 2j, 4j
    gap_coarse = (coarse - fine[..., ::2, ::2]).abs().max()
    gap_fine = (fine - finer[..., ::2, ::2]).abs().max()
    assert gap_fine < 0.5 * gap_coarse, (float(gap_coarse), float(gap_fine))
    assert gap_fine < 0.05 * float(finer.abs().max())


def test_local_sfno_is_the_sfno_plus_disco_branches_and_round_trips():
    torch.manual_seed(0)
    model = build_model("localsfno", in_channels=4, out_channels=3, width=8, depth=2, modes=[8, 16],
                        theta_cutoff=0.3).eval()
    plain = LocalSFNO(4, 3, width=8, depth=2, modes=(8, 16), disco=False)
    branches = sum(p.numel() for m in model.modules() if isinstance(m, SphericalDiscoConv) for p in m.parameters())
    assert branches > 0
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters()) + branches
    x = torch.randn(2, 4, 16, 32)
    assert model(x).shape == (2, 3, 16, 32)
    assert model(torch.randn(1, 4, 32, 64)).shape == (1, 3, 32, 64)  # resolution transfer
    rebuilt = model_from_record(model_record(model), plain_state_dict(model)).eval()
    assert torch.equal(rebuilt(x), model(x))
    with torch.no_grad():  # the branches count: zeroing them changes the output
        for m in model.modules():
            if isinstance(m, SphericalDiscoConv):
                m.weight.zero_()
    assert not torch.allclose(model(x), rebuilt(x))


def test_bad_spherical_arguments_are_named():
    with pytest.raises(ValueError, match="theta_cutoff must be an angle in"):
        SphericalDiscoConv(2, 2, theta_cutoff=4.0)
    with pytest.raises(ValueError, match=r"expected \(batch, 2, nlat, nlon\)"):
        SphericalDiscoConv(2, 2, theta_cutoff=0.3)(torch.randn(1, 3, 8, 16))
