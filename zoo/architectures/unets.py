"""The three segmentation U-Nets of the source study: classic, improved and attention.

All three share one skeleton: 4 encoder levels whose widths double from `n_filters`
(n, 2n, 4n, 8n at n = 16: 16, 32, 64, 128), a 2x2 max-pool after each, a bottleneck at 1/16 of
the input size, 4 decoder levels that each upsample bilinearly by 2 and merge the encoder
features of the same level (the skip), and a 1x1 convolution to `num_classes` logits. The
decoder at each level returns the width of the next finer skip (8n -> 4n -> 2n -> n -> n), so
the output is n channels at full resolution before the 1x1 head.

- `classic_unet` (Ronneberger et al. 2015, narrower): every block is two 3x3 convolutions with
  bias, each followed by ReLU. The bottleneck widens 8n -> 16n and comes back to 8n, so the
  upsampled features and the skip both have the skip's width C; they are concatenated (2C) and
  the decoder block halves them with its first convolution (2C -> C -> next width).
- `improved_unet`: every 3x3 convolution becomes a depthwise-separable "inverted bottleneck"
  unit in the ConvNeXt / MobileNetV2 manner: depthwise 7x7 -> batch norm -> 1x1 expansion to
  4x the wider of the unit's input and output -> ReLU -> 1x1 projection. Blocks (encoder,
  bottleneck and decoder alike) are two such units. Skips are added, not concatenated, which
  is why the bottleneck stays at 8n: its output must match the width of the deepest skip.
- `attention_unet`: the improved U-Net with an additive attention gate (Oktay et al. 2018) on
  every skip. The gating signal g is the coarser decoder output (the bottleneck output for
  the deepest skip), which already has the skip's width C. W_x is a 1x1 convolution with
  stride 2 that brings the skip x down to g's grid, W_g a 1x1 convolution, both to C channels;
  then ReLU, a 1x1 convolution psi to one channel and a sigmoid. The coefficients are
  computed on the coarse grid (as in the paper) and resampled bilinearly to the skip's grid,
  then multiply the skip before it is added to the upsampled decoder features.

Parameter counts at in_channels = 4, num_classes = 3, n_filters = 16 equal the study's exactly:
1,375,043 (classic), 799,075 (improved) and 843,319 (attention); tests check this. The study's
prose leaves three choices open, and only these readings give its counts (they are also what
its public code does):
- classic: the bottleneck goes to 16n (256) and back, and the decoder halves channels in its
  first convolution after concatenating (no separate conv after the upsampling); all
  convolutions carry a bias.
- improved: there is one batch norm per separable unit, after the depthwise convolution (where
  ConvNeXt puts its norm), not one after every convolution as the prose suggests. The
  depthwise convolution keeps its bias although the batch norm right after it cancels it:
  it is in the study's count.
- attention: the intermediate width of each gate is the skip's own width C, with bias on W_x,
  W_g and psi (2C^2 + 3C + 1 parameters per gate, 44,244 over the four at n = 16).

One choice does not change the count: upsampling uses `align_corners=False` (the study used
`UpsamplingBilinear2d`, i.e. `align_corners=True`). With False a 2x upsampling is the exact
geometric inverse of the 2x2 max-pool grid, so upsampled features sit over the skip pixels
they came from.

After each forward pass the attention U-Net leaves its coefficients in `last_attention`:
one detached (N, 1, H, W) map per gate, in [0, 1], finest level first, each at the resolution
of the skip it gated. They are a plain attribute, never an output, so tracing and ONNX export
see an ordinary single-output model. The other two U-Nets leave an empty list.
"""

from dataclasses import dataclass
from typing import List, Tuple  # typing's generics: what TorchScript reads in forward signatures

import torch
import torch.nn.functional as F
from torch import nn

UNET_ARCHS = ("classic_unet", "improved_unet", "attention_unet")

N_LEVELS = 4  # encoder levels, each followed by one 2x2 max-pool
SIZE_MULTIPLE = 2 ** N_LEVELS  # H and W must survive 4 halvings exactly for the skips to line up
INVERTED_EXPANSION = 4  # hidden width of a separable unit, as a multiple of its wider side
CLASSIC_BOTTLENECK_WIDENING = 2  # the classic bottleneck goes 8n -> 16n -> 8n


@dataclass(frozen=True)
class UNetSpec:
    separable: bool  # depthwise-separable inverted-bottleneck units instead of plain convolutions
    kernel_size: int  # spatial kernel of every (depthwise) convolution
    concat_skips: bool  # concatenate skips (classic) or add them
    attention_gates: bool  # gate every skip with Oktay et al.'s additive attention

    def __post_init__(self):
        if self.attention_gates and self.concat_skips:
            raise ValueError("attention gates here feed additive skips, as in the study; not concatenated ones")


SPECS = {
    "classic_unet": UNetSpec(separable=False, kernel_size=3, concat_skips=True, attention_gates=False),
    "improved_unet": UNetSpec(separable=True, kernel_size=7, concat_skips=False, attention_gates=False),
    "attention_unet": UNetSpec(separable=True, kernel_size=7, concat_skips=False, attention_gates=True),
}


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers and do not count)."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class DoubleConv(nn.Sequential):
    """Two 'same' convolutions, each followed by ReLU: the classic U-Net block."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int):
        padding = kernel_size // 2
        super().__init__(
            nn.Conv2d(in_channels, mid_channels, kernel_size, padding=padding), nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size, padding=padding), nn.ReLU(inplace=True),
        )


class SeparableInvertedConv(nn.Sequential):
    """Depthwise kxk -> batch norm -> 1x1 expand -> ReLU -> 1x1 project (a ConvNeXt unit without
    the residual, with batch norm for layer norm and ReLU for GELU).

    The spatial mixing costs only k*k weights per channel; the channel mixing happens in the
    wide 1x1 layers. The hidden width is 4x the wider side, so a unit that widens (encoder) or
    narrows (decoder) the features expands from the wider of the two.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        hidden = INVERTED_EXPANSION * max(in_channels, out_channels)
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels),
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )


class SeparableBlock(nn.Sequential):
    """Two separable inverted units: the improved U-Net's counterpart of DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(
            SeparableInvertedConv(in_channels, out_channels, kernel_size),
            SeparableInvertedConv(out_channels, out_channels, kernel_size),
        )


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018): alpha = sigmoid(psi(relu(W_x x + W_g g))).

    x is the skip at resolution R and g the coarser decoder output at R/2. W_x's stride of 2
    brings x onto g's grid, so the gate works on a quarter of the skip's pixels; alpha is then
    resampled bilinearly to R. Bilinear weights are convex, so alpha stays in [0, 1].
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int):
        super().__init__()
        self.skip_to_inter = nn.Conv2d(skip_channels, inter_channels, 1, stride=2)  # W_x
        self.gate_to_inter = nn.Conv2d(gate_channels, inter_channels, 1)  # W_g
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        joint = torch.relu(self.skip_to_inter(skip) + self.gate_to_inter(gate))
        coefficients = _upsample2x(torch.sigmoid(self.psi(joint)))
        return skip * coefficients, coefficients


class ConcatSkipStage(nn.Module):
    """Classic decoder level: upsample, concatenate the skip, decode."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor, attention_maps: List[torch.Tensor]) -> torch.Tensor:
        return self.block(torch.cat([_upsample2x(coarse), skip], dim=1))


class AddSkipStage(nn.Module):
    """Improved decoder level: upsample, add the skip, decode."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor, attention_maps: List[torch.Tensor]) -> torch.Tensor:
        return self.block(_upsample2x(coarse) + skip)


class GatedAddSkipStage(nn.Module):
    """Attention decoder level: gate the skip with the coarse features, upsample, add, decode.

    The coefficients go into `attention_maps` (a list shared by all levels) rather than into
    the return value, so every stage has the same signature and the model one output.
    """

    def __init__(self, block: nn.Module, gate: AttentionGate):
        super().__init__()
        self.block = block
        self.gate = gate

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor, attention_maps: List[torch.Tensor]) -> torch.Tensor:
        gated_skip, coefficients = self.gate(skip, coarse)
        attention_maps.append(coefficients)
        return self.block(_upsample2x(coarse) + gated_skip)


class UNet(nn.Module):
    """Encoder levels, a bottleneck, decoder stages (coarsest first) and a 1x1 head."""

    last_attention: List[torch.Tensor]

    def __init__(self, encoders: list[nn.Module], bottleneck: nn.Module, decoder_stages: list[nn.Module],
                 head: nn.Conv2d):
        super().__init__()
        if len(encoders) != N_LEVELS or len(decoder_stages) != N_LEVELS:
            raise ValueError(f"a U-Net here has {N_LEVELS} encoder and decoder levels, "
                             f"got {len(encoders)} and {len(decoder_stages)}")
        self.encoders = nn.ModuleList(encoders)
        self.bottleneck = bottleneck
        self.decoder_stages = nn.ModuleList(decoder_stages)
        self.head = head
        # Copied onto the module because TorchScript cannot read module-level globals in forward.
        self.size_multiple = SIZE_MULTIPLE
        self.n_levels = N_LEVELS
        self.last_attention = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        # Skipped while tracing: there the sizes are traced values and the check would only be
        # frozen into the graph as a constant (with a warning); eager and scripted runs check.
        multiple = self.size_multiple
        if not torch.jit.is_tracing() and (height % multiple != 0 or width % multiple != 0):
            raise ValueError(f"U-Net input height and width must be divisible by {multiple} "
                             f"({self.n_levels} 2x2 max-pools), got {height}x{width}")
        skips: List[torch.Tensor] = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        attention_maps: List[torch.Tensor] = []
        level = len(skips)
        for stage in self.decoder_stages:
            level -= 1
            x = stage(x, skips[level], attention_maps)
        # Detached so that keeping the maps for a report never holds on to the autograd graph.
        self.last_attention = [coefficients.detach() for coefficients in attention_maps[::-1]]
        return self.head(x)


def _level_widths(n_filters: int) -> list[int]:
    return [n_filters * 2 ** level for level in range(N_LEVELS)]


def _build(spec: UNetSpec, *, in_channels: int, num_classes: int, n_filters: int) -> UNet:
    widths = _level_widths(n_filters)  # skip widths, finest first
    kernel = spec.kernel_size

    def block(block_in: int, block_out: int, classic_mid: int) -> nn.Module:
        if spec.separable:
            return SeparableBlock(block_in, block_out, kernel)
        return DoubleConv(block_in, classic_mid, block_out, kernel)

    encoders = []
    previous = in_channels
    for width in widths:
        encoders.append(block(previous, width, classic_mid=width))
        previous = width

    deepest = widths[-1]
    bottleneck = block(deepest, deepest, classic_mid=CLASSIC_BOTTLENECK_WIDENING * deepest)

    stages = []
    for level in reversed(range(N_LEVELS)):
        skip_width = widths[level]
        # The decoder hands the next finer level features of that level's skip width, so that
        # they can be added to (or concatenated with) that skip; the finest level keeps n.
        out_width = widths[level - 1] if level > 0 else widths[0]
        merged_width = 2 * skip_width if spec.concat_skips else skip_width
        decoder_block = block(merged_width, out_width, classic_mid=skip_width)
        if spec.attention_gates:
            # The coarser decoder output has the skip's width, so W_x and W_g both map C -> C.
            gate = AttentionGate(skip_width, gate_channels=skip_width, inter_channels=skip_width)
            stages.append(GatedAddSkipStage(decoder_block, gate))
        elif spec.concat_skips:
            stages.append(ConcatSkipStage(decoder_block))
        else:
            stages.append(AddSkipStage(decoder_block))

    head = nn.Conv2d(widths[0], num_classes, 1)
    return UNet(encoders, bottleneck, stages, head)


def build_unet(arch: str, *, in_channels: int = 1, num_classes: int = 1, n_filters: int = 16) -> nn.Module:
    """A U-Net mapping (N, in_channels, H, W) to (N, num_classes, H, W) logits, H and W divisible by 16."""
    if arch not in SPECS:
        raise ValueError(f"unknown U-Net architecture {arch!r}; expected one of {', '.join(UNET_ARCHS)}")
    for name, value in (("n_filters", n_filters), ("in_channels", in_channels), ("num_classes", num_classes)):
        if value < 1:
            raise ValueError(f"U-Net {name} must be at least 1, got {value}")
    return _build(SPECS[arch], in_channels=in_channels, num_classes=num_classes, n_filters=n_filters)
