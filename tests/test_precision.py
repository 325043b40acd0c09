"""Training precision: bf16 autocast where the hardware has bf16 units, fp32 losses under autocast, channels-last."""

from __future__ import annotations

import pytest
import torch

from iseg.models.attention import gather_at_clicks
from iseg.training import load_config
from iseg.training.losses import binary_cross_entropy, instance_loss, normalized_focal_loss
from iseg.training.precision import autocast, bf16_fast, cpu_bf16_units, describe, use_amp

CPU = torch.device("cpu")


def test_amp_auto_follows_the_cpu_bf16_units():
    assert use_amp("auto", CPU) == bool(cpu_bf16_units()) == bf16_fast(CPU)
    assert use_amp(True, CPU) and not use_amp(False, CPU)
    assert describe(CPU).startswith("cpu: ")


@pytest.mark.parametrize("bad", ["yes", 1, None, "AUTO"])
def test_amp_setting_is_true_false_or_auto(bad):
    with pytest.raises(ValueError, match="'amp' must be true, false or 'auto'"):
        load_config("smoke", {"amp": bad})


def random_logits_and_target():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 64, 64, generator=generator) * 4
    target = (torch.rand(2, 1, 64, 64, generator=generator) > 0.5).float()
    target[:, :, :4] = -1
    return logits, target


@pytest.mark.parametrize("loss", [normalized_focal_loss, binary_cross_entropy])
def test_losses_are_fp32_under_bf16_autocast(loss):
    logits, target = random_logits_and_target()
    reference = loss(logits, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(logits.bfloat16(), target)
    assert value.dtype == torch.float32
    # the only difference left is the rounding of the logits themselves to bf16 (not a bf16 sigmoid: 27 % off)
    assert value.item() == pytest.approx(loss(logits.bfloat16().float(), target).item(), rel=1e-6)
    assert value.item() == pytest.approx(reference.item(), rel=0.02)


def test_instance_loss_of_a_bf16_network_output_is_fp32():
    logits, target = random_logits_and_target()
    with autocast(CPU, True):
        value = instance_loss({"instances": logits.bfloat16(), "instances_aux": logits.bfloat16()}, target)
    assert value.dtype == torch.float32


def test_clicks_are_gathered_alike_in_both_memory_formats():
    features = torch.randn(2, 5, 12, 16)
    points = torch.tensor([[[3.0, 7.0, 0.0], [47.0, 63.0, 1.0], [-1.0, -1.0, -1.0]],
                           [[0.0, 0.0, 0.0], [20.0, 30.0, 1.0], [9.0, 2.0, 2.0]]])
    expected, valid = gather_at_clicks(features, points, stride=4)
    gathered, _ = gather_at_clicks(features.to(memory_format=torch.channels_last), points, stride=4)
    torch.testing.assert_close(gathered, expected, rtol=0, atol=0)
    assert expected.shape == (2, 5, 3) and valid.tolist() == [[True, True, False], [True, True, True]]
    torch.testing.assert_close(expected[1, :, 1], features[1, :, 5, 7])
