"""The three segmentation U-Nets: the study's parameter counts, shapes, attention maps, input
checks, TorchScript / ONNX parity with eager, and a tiny overfit on synthetic discs."""

import io
import warnings

import pytest
import torch
import torch.nn.functional as F

from zoo.architectures.unets import UNET_ARCHS, build_unet, count_parameters

# Trainable parameters the study reports at n_filters = 16, 4 input channels (the BraTS
# modalities) and 3 outputs (its three tumour sub-regions).
STUDY_COUNTS = {"classic_unet": 1_375_043, "improved_unet": 799_075, "attention_unet": 843_319}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny forward passes gain nothing from a second thread, and when the cores are busy with
    other work, OpenMP threads waiting on each other make them far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(arch: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(arch, **kwargs).eval()


@pytest.mark.parametrize("arch", UNET_ARCHS)
def test_parameter_count_equals_the_study(arch):
    model = build_unet(arch, in_channels=4, num_classes=3, n_filters=16)
    assert count_parameters(model) == STUDY_COUNTS[arch]


def test_count_parameters_skips_frozen_parameters():
    model = build_unet("classic_unet", n_filters=4)
    total = count_parameters(model)
    model.head.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.head.weight.numel()


@pytest.mark.parametrize("arch", UNET_ARCHS)
def test_parameter_count_grows_with_n_filters(arch):
    counts = [count_parameters(build_unet(arch, n_filters=n)) for n in (4, 8, 16)]
    assert counts == sorted(counts) and len(set(counts)) == 3


@pytest.mark.parametrize("arch", UNET_ARCHS)
@pytest.mark.parametrize("height, width", [(64, 64), (128, 96)])
def test_one_logit_map_per_pixel(arch, height, width):
    model = _model(arch)
    with torch.no_grad():
        logits = model(torch.randn(2, 1, height, width))
    assert logits.shape == (2, 1, height, width)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_attention_maps_one_per_gate_finest_first_in_unit_interval():
    model = _model("attention_unet", in_channels=1, num_classes=1, n_filters=8)
    with torch.no_grad():
        model(torch.randn(3, 1, 64, 96))
    maps = model.last_attention
    assert [tuple(m.shape) for m in maps] == [(3, 1, 64 // 2**k, 96 // 2**k) for k in range(4)]
    for coefficients in maps:
        assert coefficients.min() >= 0 and coefficients.max() <= 1
        assert not coefficients.requires_grad


def test_attention_maps_do_not_keep_the_graph_and_follow_the_latest_batch():
    model = _model("attention_unet", n_filters=4).train()
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    assert all(m.grad_fn is None for m in model.last_attention)
    with torch.no_grad():
        model(torch.randn(1, 1, 16, 48))
    assert model.last_attention[0].shape == (1, 1, 16, 48)


@pytest.mark.parametrize("arch", ["classic_unet", "improved_unet"])
def test_ungated_unets_leave_no_attention_maps(arch):
    model = _model(arch, n_filters=4)
    with torch.no_grad():
        model(torch.randn(1, 1, 32, 32))
    assert model.last_attention == []


@pytest.mark.parametrize("height, width", [(60, 64), (64, 72)])
def test_size_not_divisible_by_16_is_refused(height, width):
    model = _model("classic_unet", n_filters=4)
    with pytest.raises(ValueError, match=f"divisible by 16.*got {height}x{width}$"):
        model(torch.randn(1, 1, height, width))


def test_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="unknown U-Net architecture 'resunet'"):
        build_unet("resunet")


@pytest.mark.parametrize("bad", [{"n_filters": 0}, {"in_channels": 0}, {"num_classes": -1}])
def test_non_positive_widths_are_refused(bad):
    (name, value), = bad.items()
    with pytest.raises(ValueError, match=f"{name} must be at least 1, got {value}"):
        build_unet("classic_unet", **bad)


@pytest.mark.parametrize("arch", UNET_ARCHS)
def test_traced_model_matches_eager(arch):
    model = _model(arch)
    example = torch.randn(2, 1, 64, 64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(model, example)
        torch.testing.assert_close(traced(example), model(example), atol=1e-5, rtol=0)
        other_size = torch.randn(1, 1, 128, 96)  # the trace is not tied to the example's size
        torch.testing.assert_close(traced(other_size), model(other_size), atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", UNET_ARCHS)
def test_scripted_model_matches_eager_and_checks_sizes(arch):
    model = _model(arch, n_filters=8)
    x = torch.randn(1, 1, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        scripted = torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), atol=1e-5, rtol=0)
        assert len(scripted.last_attention) == (4 if arch == "attention_unet" else 0)
        with pytest.raises(Exception, match="got 48x40"):
            scripted(torch.randn(1, 1, 48, 40))


@pytest.mark.parametrize("arch", UNET_ARCHS)
def test_onnx_export_matches_eager(arch):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _model(arch, n_filters=8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(model, (torch.randn(1, 1, 64, 64),), buffer, opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "logits": {0: "batch", 2: "height", 3: "width"}})
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, 128, 96)
    with torch.no_grad():
        expected = model(x).numpy()
    (logits,) = session.run(None, {"image": x.numpy()})
    assert logits.shape == expected.shape
    assert abs(logits - expected).max() < 1e-4


def _bright_discs_on_noise(count: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = torch.randint(6, 11, (count, 1, 1), generator=generator)
    centre_row = torch.randint(10, size - 10, (count, 1, 1), generator=generator)
    centre_col = torch.randint(10, size - 10, (count, 1, 1), generator=generator)
    mask = ((rows - centre_row) ** 2 + (cols - centre_col) ** 2 <= radius**2).float().unsqueeze(1)
    image = mask + 0.5 * torch.randn(count, 1, size, size, generator=generator)
    return (image - image.mean()) / image.std(), mask


def _dice(logits: torch.Tensor, mask: torch.Tensor) -> float:
    predicted = (logits > 0).float()
    return (2 * (predicted * mask).sum() / (predicted.sum() + mask.sum()).clamp(min=1)).item()


@pytest.mark.slow
def test_classic_unet_overfits_synthetic_discs():
    # With seed 0 Dice passes 0.8 after about 15 steps and ends near 0.97. A 4-filter net is
    # fragile, so the seed matters: seeds 0-19 pass 18 times; of the two failures one loses
    # every ReLU of its last decoder block and predicts a constant, the other never finds the
    # discs in 60 steps at this learning rate.
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    image, mask = _bright_discs_on_noise(8, 32, generator)
    model = build_unet("classic_unet", n_filters=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits = model(image)
        probability = torch.sigmoid(logits)
        soft_dice = (2 * (probability * mask).sum() + 1) / (probability.sum() + mask.sum() + 1)
        loss = F.binary_cross_entropy_with_logits(logits, mask) + (1 - soft_dice)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert _dice(model.eval()(image), mask) > 0.8
