"""Networks: registry names, output shapes, ABANet's deep supervision, offline ImageNet init, masked pre-training."""

import warnings

import pytest
import segmentation_models_pytorch as smp
import torch
from faceparse.models import (
    ABANet,
    MaskedPretrainNet,
    UnknownArchitectureError,
    build_model,
    list_architectures,
    transfer_pretrained_body,
)
from faceparse.models import efficientnet_lite as lite_module
from faceparse.models import pretrained as pretrained_module
from faceparse.models.parsers import MODIFIED_ASPP_BRANCHES, ModifiedASPP
from faceparse.models.pretrained import PretrainedWeightsWarning, find_mobilenet_v2_weights

PARSERS = [
    "deeplabv3plus_mobilenetv2",
    "deeplabv3plus_efficientnet_lite2",
    "deeplabv3plus_mobilenetv2_refined",
    "unet_mobilenetv2",
    "unetplusplus_resnet50",
    "deeplabv3plus_resnet50",
    "deeplabv3plus_mobilenetv3",
]


def classes_for(name: str) -> int:
    return 2 if name == "abanet" else 5


def test_registry_names_are_the_contract():
    assert list_architectures() == [*PARSERS, "abanet"]
    assert list_architectures("mask") == ["abanet"]
    with pytest.raises(UnknownArchitectureError, match="known: deeplabv3plus_mobilenetv2"):
        build_model("segformer", classes=3)
    with pytest.raises(TypeError, match="classes"):
        build_model("abanet")


@pytest.mark.parametrize("name", [*PARSERS, "abanet"])
def test_eval_output_is_logits_at_input_resolution(name):
    torch.manual_seed(0)
    model = build_model(name, classes=classes_for(name)).eval()
    with torch.no_grad():
        for shape in (
            [(1, 3, 64, 64), (2, 3, 32, 96)] if name != "abanet" else [(1, 3, 32, 32), (2, 3, 64, 32)]
        ):
            out = model(torch.randn(shape))
            assert isinstance(out, torch.Tensor)
            assert out.shape == (shape[0], classes_for(name), *shape[2:])
            assert torch.isfinite(out).all()


def test_smp_parsers_are_plain_smp_models_with_smp_keys():
    trained_elsewhere = smp.DeepLabV3Plus(encoder_name="mobilenet_v2", encoder_weights=None, classes=19)
    model = build_model("deeplabv3plus_mobilenetv2", classes=19)
    assert type(model) is smp.DeepLabV3Plus
    model.load_state_dict(trained_elsewhere.state_dict(), strict=True)
    assert type(build_model("unetplusplus_resnet50", classes=3)) is smp.UnetPlusPlus


def test_unetplusplus_parsing_head_is_one_convolution():
    model = build_model("unetplusplus_resnet50", classes=7)
    convs = [m for m in model.segmentation_head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 and convs[0].out_channels == 7


def test_modified_aspp_uses_the_papers_kernels_and_rates():
    model = build_model("deeplabv3plus_mobilenetv3", classes=3, modified_aspp=True).eval()
    aspp = model.decoder.aspp[0]
    assert isinstance(aspp, ModifiedASPP)
    depthwise = [branch[0] for branch in aspp.branches]
    assert [(c.kernel_size[0], c.dilation[0]) for c in depthwise] == list(MODIFIED_ASPP_BRANCHES)
    assert MODIFIED_ASPP_BRANCHES == ((3, 1), (5, 4), (7, 8), (11, 16))
    plain = build_model("deeplabv3plus_mobilenetv3", classes=3)
    assert not isinstance(plain.decoder.aspp[0], ModifiedASPP)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_abanet_training_mode_returns_eight_side_outputs_refined_first():
    torch.manual_seed(0)
    model = ABANet().train()
    outputs = model(torch.randn(2, 3, 32, 32))
    assert isinstance(outputs, list) and len(outputs) == 8
    assert all(side.shape == (2, 2, 32, 32) for side in outputs)
    outputs[0].sum().backward()
    assert model.stem[0].weight.grad is not None
    model.eval()
    with torch.no_grad():
        refined = model(torch.randn(2, 3, 32, 32))
    assert isinstance(refined, torch.Tensor) and refined.shape == (2, 2, 32, 32)


def test_abanet_two_class_logits_softmax_to_the_mask_sigmoid():
    model = ABANet().eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 32, 32))
    z = logits[:, 1] - logits[:, 0]
    assert torch.allclose(logits.softmax(1)[:, 1], torch.sigmoid(z), atol=1e-6)
    assert torch.allclose(logits[:, 0], -logits[:, 1])


def test_abanet_is_binary():
    with pytest.raises(ValueError, match="binary"):
        ABANet(classes=3)


def test_pretrained_mobilenet_v2_changes_the_encoder():
    path = find_mobilenet_v2_weights()
    assert path is not None and path.name == "mobilenet_v2-b0353104.pth", (
        "setup installs the ImageNet weights"
    )
    torch.manual_seed(0)
    random_init = build_model("deeplabv3plus_mobilenetv2", classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedWeightsWarning)
        torch.manual_seed(0)
        imagenet = build_model("deeplabv3plus_mobilenetv2", classes=3, pretrained=True)
    reference = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("features.0.0.weight", "features.18.1.running_var"):
        assert torch.equal(imagenet.encoder.state_dict()[key], reference[key])
        assert not torch.equal(random_init.encoder.state_dict()[key], reference[key])


def test_missing_imagenet_weights_warn_and_fall_back(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained_module, "find_mobilenet_v2_weights", lambda: None)
    torch.manual_seed(0)
    expected = build_model("deeplabv3plus_mobilenetv2", classes=3).encoder.state_dict()
    torch.manual_seed(0)
    with pytest.warns(PretrainedWeightsWarning, match="random init"):
        model = build_model("deeplabv3plus_mobilenetv2", classes=3, pretrained=True)
    assert all(torch.equal(expected[k], v) for k, v in model.encoder.state_dict().items())

    foreign = tmp_path / "other.pth"
    torch.save({"features.0.0.weight": torch.zeros(2, 2)}, foreign)
    encoder = build_model("deeplabv3plus_mobilenetv2", classes=3).encoder
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.warns(PretrainedWeightsWarning, match="does not fit"):
        assert not pretrained_module.load_imagenet_mobilenet_v2(encoder, foreign)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_pretrained_efficientnet_lite2_takes_every_tensor_of_the_file_and_imagenet_pixels():
    path = lite_module.find_efficientnet_lite2_weights()
    assert path is not None and path.name == lite_module.WEIGHTS_FILE, "setup installs the ImageNet weights"
    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedWeightsWarning)
        model = build_model("deeplabv3plus_efficientnet_lite2", classes=3, pretrained=True).eval()
    reference = torch.load(path, map_location="cpu", weights_only=True)
    encoder = model.encoder.state_dict()
    assert torch.equal(encoder["model.blocks.6.0.conv_pwl.weight"], reference["_blocks.20._project_conv.weight"])
    assert torch.equal(encoder["model.bn1.running_var"], reference["_bn0.running_var"])

    # The stem now takes ImageNet-normalised pixels: away from the border it computes the file's stem on
    # pixels scaled as (p - 127) / 128.
    pixels = torch.rand(1, 3, 32, 32)
    mean = torch.tensor(lite_module.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(lite_module.IMAGENET_STD).view(1, 3, 1, 1)
    stem = model.encoder.model
    with torch.no_grad():
        ours = stem.bn1(stem.conv_stem((pixels - mean) / std))
        stem.conv_stem.weight.copy_(reference["_conv_stem.weight"])
        stem.bn1.running_mean.copy_(reference["_bn0.running_mean"])
        theirs = stem.bn1(stem.conv_stem((pixels * 255 - 127) / 128))
    assert torch.allclose(ours[..., :-1, :-1], theirs[..., :-1, :-1], atol=1e-4)


def test_efficientnet_lite2_weights_missing_or_foreign_leave_random_init(monkeypatch, tmp_path):
    monkeypatch.setattr(lite_module, "find_efficientnet_lite2_weights", lambda: None)
    with pytest.warns(PretrainedWeightsWarning, match="EfficientNet-Lite2 .*random init"):
        build_model("deeplabv3plus_efficientnet_lite2", classes=3, pretrained=True)

    foreign = tmp_path / "other.pth"
    torch.save({"_conv_stem.weight": torch.zeros(2, 2)}, foreign)
    encoder = build_model("deeplabv3plus_efficientnet_lite2", classes=3).encoder
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.warns(PretrainedWeightsWarning, match="does not fit"):
        assert not lite_module.load_imagenet_efficientnet_lite2(encoder, foreign)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_efficientnet_lite2_static_padding_gives_timms_same_padding_output():
    torch.manual_seed(0)
    dynamic = smp.DeepLabV3Plus(encoder_name="tu-tf_efficientnet_lite2", encoder_weights=None, classes=3).eval()
    model = build_model("deeplabv3plus_efficientnet_lite2", classes=3).eval()
    model.load_state_dict(dynamic.state_dict(), strict=True)
    replaced = [m for m in model.modules() if isinstance(m, lite_module.StaticSamePaddingConv2d)]
    assert replaced and any(m.stride == (2, 2) for m in replaced)
    with torch.no_grad():
        for shape in ((1, 3, 64, 64), (1, 3, 96, 160)):
            x = torch.randn(shape)
            assert torch.equal(model(x), dynamic(x))


def test_other_architectures_warn_that_no_offline_weights_exist():
    with pytest.warns(PretrainedWeightsWarning, match="random init"):
        build_model("deeplabv3plus_mobilenetv3", classes=3, pretrained=True)


@pytest.mark.parametrize("name", ["deeplabv3plus_mobilenetv2", "unetplusplus_resnet50"])
def test_masked_pretraining_reconstructs_and_hands_its_body_to_a_parser(name):
    torch.manual_seed(0)
    net = MaskedPretrainNet(name).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    convs = [m for m in net.reconstruction_head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 and convs[0].out_channels == 3

    parser = build_model(name, classes=4)
    head_before = {k: v.clone() for k, v in parser.segmentation_head.state_dict().items()}
    transfer_pretrained_body(net, parser)
    for part in ("encoder", "decoder"):
        mine, theirs = getattr(net, part).state_dict(), getattr(parser, part).state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert all(torch.equal(head_before[k], v) for k, v in parser.segmentation_head.state_dict().items())
    assert net.make_parser(classes=4).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 4, 32, 32)


def test_pretrained_body_refuses_another_architecture():
    net = MaskedPretrainNet("deeplabv3plus_mobilenetv2")
    with pytest.raises(ValueError, match="does not fit"):
        transfer_pretrained_body(net, build_model("deeplabv3plus_mobilenetv3", classes=3))
    with pytest.raises(ValueError, match="smp face parser"):
        MaskedPretrainNet("abanet")
