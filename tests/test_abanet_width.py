import pytest
import torch
from faceparse.models.registry import build_model


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_width_shrinks_abanet_but_keeps_its_outputs():
    full = build_model("abanet", classes=2)
    slim = build_model("abanet", classes=2, width=0.25)
    assert _params(slim) < _params(full) / 12
    slim.train()
    sides = slim(torch.zeros(1, 3, 64, 64))
    assert len(sides) == 8 and all(s.shape == (1, 2, 64, 64) for s in sides)
    slim.eval()
    with torch.no_grad():
        assert slim(torch.zeros(2, 3, 96, 64)).shape == (2, 2, 96, 64)


def test_width_out_of_range_is_refused():
    with pytest.raises((ValueError, TypeError), match="width"):
        build_model("abanet", classes=2, width=0)
