"""PACE building blocks: the PEQ-N quantiser and the matching losses."""
import torch

from pipeline.distill.matching import amplitude_phase, sdr_features, spatial_distance, temporal_distance
from pipeline.distill.peq import peq


def test_peq_emits_integers_in_range_with_the_input_as_expectation():
    gen = torch.Generator().manual_seed(0)
    z = torch.tensor([-1.0, 0.0, 0.3, 1.5, 2.75, 3.0, 4.2])
    draws = torch.stack([peq(z, 3, gen) for _ in range(20000)])
    assert torch.equal(draws, draws.round()) and draws.min() >= 0 and draws.max() <= 3
    assert torch.allclose(draws.mean(dim=0), z.clamp(0, 3), atol=0.02)


def test_peq_passes_gradients_straight_through_inside_the_range():
    z = torch.tensor([-0.5, 0.2, 1.7, 3.0, 3.5], requires_grad=True)
    peq(z, 3, torch.Generator().manual_seed(1)).mul(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert z.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]


def test_amplitude_and_phase_parts_add_up_to_the_complex_distance():
    gen = torch.Generator().manual_seed(2)
    a = torch.complex(torch.randn(50, generator=gen), torch.randn(50, generator=gen))
    b = torch.complex(torch.randn(50, generator=gen), torch.randn(50, generator=gen))
    assert torch.allclose(amplitude_phase(a, b), (a - b).abs().mean(), atol=1e-5)


def test_matching_losses_are_zero_for_identical_sets_and_positive_otherwise():
    gen = torch.Generator().manual_seed(3)
    real = torch.rand(32, 8, 20, generator=gen)
    freqs = torch.randn(64, 20, generator=gen)
    flat = real.mean(dim=1)
    assert spatial_distance(flat, flat.clone(), freqs) < 1e-5 and temporal_distance(real, real.clone()) < 1e-5
    other = real + 0.3 * torch.rand(32, 8, 20, generator=gen)
    assert spatial_distance(flat, other.mean(dim=1), freqs) > 1e-2 and temporal_distance(real, other) > 1e-2
    shifted = torch.roll(real, 1, dims=1)       # same frames, shifted in time: only the phase differs
    assert temporal_distance(real, shifted, w_amp=1.0, w_phase=0.0) < 1e-5
    assert temporal_distance(real, shifted, w_amp=0.0, w_phase=1.0) > 1e-2


def test_sdr_adds_the_residual_potential_to_spikes():
    spikes, drive = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.5, -0.4]]])   # v / theta = 1.5 and 0.6
    assert torch.allclose(sdr_features(spikes, drive, k=0.5), torch.tensor([[[1.25, 0.3]]]))
