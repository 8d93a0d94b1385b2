"""A retrain that starts from a model of other classes (another schema, or the same names in another order) takes
the start model's class rows by name: a shared class keeps what it learnt, a new one starts fresh, and no class
inherits another's row because it stands at the same index."""

import pytest
import torch
from faceparse.core.train_worker import _class_rows, _load_matching
from faceparse.models import build_model

NETWORK = "deeplabv3plus_mobilenetv2"


@pytest.mark.parametrize(("source_classes", "target_classes"), [
    (["background", "skin", "nose"], ["background", "nose", "hat"]),  # as many classes, other names and order
    (["background", "skin", "nose", "hair"], ["background", "hair", "hat"]),  # fewer classes
])
def test_class_rows_are_copied_by_name_and_the_body_whole(source_classes, target_classes):
    torch.manual_seed(0)
    source = build_model(NETWORK, classes=len(source_classes), pretrained=False)
    target = build_model(NETWORK, classes=len(target_classes), pretrained=False)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    rows = _class_rows(NETWORK, len(target_classes), {})
    assert rows == {"segmentation_head.0.weight", "segmentation_head.0.bias"}
    _load_matching(target, source.state_dict(), lambda: rows, source_classes, target_classes)
    theirs, mine = source.state_dict(), target.state_dict()
    for name in rows:
        for i, cls in enumerate(target_classes):
            expected = theirs[name][source_classes.index(cls)] if cls in source_classes else fresh[name][i]
            assert torch.equal(mine[name][i], expected), (name, cls)
    body = [k for k in mine if k not in rows]
    assert body and all(torch.equal(mine[k], theirs[k]) for k in body)


def test_the_same_classes_load_every_tensor_as_they_are():
    source = build_model(NETWORK, classes=3, pretrained=False)
    target = build_model(NETWORK, classes=3, pretrained=False)
    classes = ["background", "skin", "nose"]
    loaded, skipped = _load_matching(target, source.state_dict(), lambda: pytest.fail("not needed"), classes, classes)
    assert skipped == 0 and all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())
