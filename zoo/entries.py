"""Every registered zoo entry. Adding a model means adding an entry here, nothing else.

The seed study's custom CNNs are registered one by one. The library architectures are a table
(`ARCHITECTURES`) from which the variants follow:

- `scratch`: every architecture, one-channel input (grayscale MRI needs no fake RGB);
- `imagenet`: every architecture with published weights (`IMAGENET_WEIGHTS`), three channels
  and the weights' own mean/std: grayscale MRI is replicated to RGB by the data pipeline;
- `mocov2`: the ResNets, backbone pretrained by MoCo v2 on the training images (bench/pretrain).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from zoo.architectures.custom_cnn import SPECS, build_custom_cnn
from zoo.architectures.knn_pixels import build_knn_pixels
from zoo.architectures.se_resnets import build_resnet50_sepost, build_seresnet50
from zoo.architectures.torchvision_cnns import (build_alexnet, build_densenet121, build_efficientnetv2_s,
                                                build_resnet50, build_vgg16)
from zoo.architectures.torchvision_models import build_mobilenetv2, build_resnet18
from zoo.architectures.unets import UNET_ARCHS, build_unet
from zoo.architectures.vision_transformers import VIT_SMALL, build_swin_t, build_vit_b16, build_vit_small
from zoo.entry import IMAGENET_NORMALIZATION, MRI_NORMALIZATION, Builder, StudyCount, ZooEntry
from zoo.pretraining import MocoRecipe
from zoo.recipe import Recipe
from zoo.registry import register
from zoo.weights import PretrainedWeights

# --- the seed study's custom CNNs --------------------------------------------------------------

CUSTOM_CNN_SOURCE = (
    "seed study of four custom CNNs (3x3 conv + ReLU + 2x2 max-pool blocks, two-layer head), "
    "reported at 3x256x256; 128 px by default here so CPU training is practical "
    "(override input_size=256 for the study's size)"
)



def _custom_cnn_cam_layer(arch: str) -> str:
    # Each block is (Conv2d, ReLU, MaxPool2d) in one flat Sequential: the last block's ReLU is the
    # last convolution's output, at twice the resolution of the pooled map that follows it.
    return str(3 * len(SPECS[arch].conv_channels) - 2)


for arch in SPECS:
    register(ZooEntry(
        arch=arch, variant="scratch", builder=partial(build_custom_cnn, arch),
        input_size=128, in_channels=3, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
        recipe=Recipe(optimizer="adam", lr=1e-3, epochs=10, batch_size=32, scheduler="cosine"),
        source=CUSTOM_CNN_SOURCE, cam_layer=_custom_cnn_cam_layer(arch),
    ))

# --- recipes -----------------------------------------------------------------------------------

# From scratch, batch-normalized CNNs: resnet18.scratch's recipe (Adam 1e-3, 20 epochs, cosine).
SCRATCH = Recipe(optimizer="adam", lr=1e-3, epochs=20, batch_size=32, scheduler="cosine")
# AlexNet and VGG have no batch norm: at 1e-3 Adam they tend to stall at the majority class.
SCRATCH_NO_BATCHNORM = Recipe(optimizer="adam", lr=1e-4, epochs=20, batch_size=32, scheduler="cosine")
# Fine-tuning every layer from pretrained weights: a small learning rate keeps their features.
FINETUNE = Recipe(optimizer="adam", lr=1e-4, epochs=10, batch_size=32, scheduler="cosine")
# Transformers: AdamW with weight decay; from scratch they need more epochs and label smoothing.
SCRATCH_TRANSFORMER = Recipe(optimizer="adamw", lr=5e-4, weight_decay=0.05, epochs=50, batch_size=32,
                             scheduler="cosine", label_smoothing=0.1)
FINETUNE_TRANSFORMER = Recipe(optimizer="adamw", lr=3e-5, weight_decay=0.05, epochs=10, batch_size=32,
                              scheduler="cosine")

# --- ImageNet weights --------------------------------------------------------------------------


def _torchvision(identifier: str, file_name: str, head: str, **extra) -> PretrainedWeights:
    # torchvision names each file after the first hex digits of its sha256: resnet50-11ad3fa6.pth
    digest = file_name.rsplit("-", 1)[1].removesuffix(".pth")
    return PretrainedWeights(library="torchvision", identifier=identifier, file_name=file_name, sha256=digest,
                             mean=IMAGENET_NORMALIZATION[0], std=IMAGENET_NORMALIZATION[1], head=head, **extra)


def _timm(identifier: str, head: str, mean: tuple[float, ...], std: tuple[float, ...], **extra) -> PretrainedWeights:
    # timm publishes no hash; a copy in the Hugging Face cache is checked against its blob name.
    return PretrainedWeights(library="timm", identifier=identifier, file_name=f"{identifier}.safetensors",
                             sha256=None, mean=mean, std=std, head=head, **extra)


RESNET50_V2 = _torchvision("ResNet50_Weights.IMAGENET1K_V2", "resnet50-11ad3fa6.pth", "fc")

IMAGENET_WEIGHTS = {
    "alexnet": _torchvision("AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", "classifier.6"),
    "vgg16": _torchvision("VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth", "classifier.6"),
    "resnet18": _torchvision("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth", "fc"),
    "resnet50": RESNET50_V2,
    "densenet121": _torchvision("DenseNet121_Weights.IMAGENET1K_V1", "densenet121-a639ec97.pth", "classifier",
                                adapter="torchvision_densenet"),
    "mobilenetv2": _torchvision("MobileNet_V2_Weights.IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", "classifier.1"),
    "efficientnetv2_s": _torchvision("EfficientNet_V2_S_Weights.IMAGENET1K_V1", "efficientnet_v2_s-dd5fe13b.pth",
                                     "classifier.1"),
    # torchvision's ResNet-50 weights for everything but the SE-POST units, which start fresh.
    "resnet50_sepost": replace(RESNET50_V2, fresh=("*.se_post.*",)),
    "seresnet50": _timm("seresnet50.ra2_in1k", "fc", IMAGENET_NORMALIZATION[0], IMAGENET_NORMALIZATION[1]),
    "vit_b16": _timm("vit_base_patch16_224.augreg_in21k_ft_in1k", "head", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
                     adapter="timm_vit_pos_embed"),
    "swin_t": _torchvision("Swin_T_Weights.IMAGENET1K_V1", "swin_t-704ceda3.pth", "head"),
}

# --- the library architectures -----------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: Builder
    input_size: int
    paper: str
    cam_layer: str  # see ZooEntry.cam_layer: where `brainbench explain` looks
    cam_reshape: str | None = None
    scratch: Recipe = SCRATCH
    finetune: Recipe = FINETUNE


# Class-activation layers: the last convolution block's output, taken before any in-place operation
# of the model's forward (which would change a hooked tensor after the hook saw it). AlexNet and VGG:
# their last ReLU, at twice the resolution of the max-pool after it. DenseNet: its last dense block,
# because torchvision applies an in-place ReLU to `features`' output. ViTs: the last block's first
# norm; the blocks' output tokens other than the class token do not reach the head, so their gradient
# is zero. Swin: its final norm, channels-last.
ARCHITECTURES = [
    Architecture("alexnet", build_alexnet, 224, "AlexNet (Krizhevsky et al. 2012)", "features.11",
                 scratch=SCRATCH_NO_BATCHNORM),
    Architecture("vgg16", build_vgg16, 224, "VGG-16 (Simonyan & Zisserman 2015)", "features.29",
                 scratch=SCRATCH_NO_BATCHNORM),
    Architecture("resnet18", build_resnet18, 224, "ResNet-18 (He et al. 2016)", "layer4"),
    Architecture("resnet50", build_resnet50, 224, "ResNet-50 (He et al. 2016)", "layer4"),
    Architecture("densenet121", build_densenet121, 224, "DenseNet-121 (Huang et al. 2017)", "features.denseblock4"),
    Architecture("mobilenetv2", build_mobilenetv2, 224, "MobileNetV2 (Sandler et al. 2018)", "features"),
    # torchvision's EfficientNetV2-S: its weights carry a sha256 like the other CNNs' and need no TF
    # 'same' padding (timm's tf_ port does). They were evaluated at 384 px; 224 is the studies' size.
    Architecture("efficientnetv2_s", build_efficientnetv2_s, 224, "EfficientNetV2-S (Tan & Le 2021)", "features"),
    Architecture("seresnet50", build_seresnet50, 224, "SE-ResNet-50 (Hu et al. 2018), SE before the addition",
                 "layer4"),
    Architecture("resnet50_sepost", build_resnet50_sepost, 224,
                 "ResNet-50 with SE on each block's output (SE-POST in Hu et al.'s SENet ablation, TPAMI 2020)",
                 "layer4"),
    Architecture("vit_small", build_vit_small, 128,
                 "compact ViT (Dosovitskiy et al. 2021): 16 px patches, width 384, depth 6",
                 f"blocks.{VIT_SMALL['depth'] - 1}.norm1", cam_reshape="vit", scratch=SCRATCH_TRANSFORMER),
    Architecture("vit_b16", build_vit_b16, 224, "ViT-B/16 (Dosovitskiy et al. 2021)", "blocks.11.norm1",
                 cam_reshape="vit", scratch=SCRATCH_TRANSFORMER, finetune=FINETUNE_TRANSFORMER),
    Architecture("swin_t", build_swin_t, 224, "Swin-T (Liu et al. 2021)", "norm", cam_reshape="swin",
                 scratch=SCRATCH_TRANSFORMER, finetune=FINETUNE_TRANSFORMER),
]


def _scratch_entry(arch: Architecture) -> ZooEntry:
    return ZooEntry(
        arch=arch.name, variant="scratch", builder=arch.builder, input_size=arch.input_size, in_channels=1,
        mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1], recipe=arch.scratch,
        source=f"{arch.paper}; trained from scratch on grayscale MRI",
        cam_layer=arch.cam_layer, cam_reshape=arch.cam_reshape,
    )


def _imagenet_entry(arch: Architecture, weights: PretrainedWeights) -> ZooEntry:
    return ZooEntry(
        arch=arch.name, variant="imagenet", builder=arch.builder, input_size=arch.input_size, in_channels=3,
        mean=weights.mean, std=weights.std, recipe=arch.finetune, weights=weights,
        source=f"{arch.paper}; fine-tuned from ImageNet weights {weights.library} {weights.identifier}",
        cam_layer=arch.cam_layer, cam_reshape=arch.cam_reshape,
    )


for architecture in ARCHITECTURES:
    register(_scratch_entry(architecture))
    if architecture.name in IMAGENET_WEIGHTS:
        register(_imagenet_entry(architecture, IMAGENET_WEIGHTS[architecture.name]))

# --- MoCo v2 self-supervised pretraining -------------------------------------------------------

MOCO_SOURCE = "{paper}; MoCo v2 (Chen et al. 2020) pretraining on the training images, then fine-tuned"

# The paper's recipe (lr 0.03 for batch 256, 200 epochs, temperature 0.2), lr scaled linearly to
# batch 128. At 224 px this is GPU work: 200 epochs of about 40 steps on the Kaggle training split.
MOCO_GPU = MocoRecipe(epochs=200, batch_size=128, lr=0.015)
# Sized for a 2-core CPU: 64 px and 10 epochs. A supervised 64 px ResNet-18 epoch on the full
# training split takes about 45 s there and a MoCo step costs roughly a third more (a second,
# gradient-free forward pass for the key encoder), so expect on the order of 10 minutes.
MOCO_CPU = MocoRecipe(epochs=10, batch_size=64, lr=0.0075, input_size=64)

MOCO_ARCHITECTURES = {"resnet18": MOCO_CPU, "resnet50": MOCO_GPU, "resnet50_sepost": MOCO_GPU, "seresnet50": MOCO_GPU}

for architecture in ARCHITECTURES:
    if architecture.name in MOCO_ARCHITECTURES:
        register(ZooEntry(
            arch=architecture.name, variant="mocov2", builder=architecture.builder,
            input_size=architecture.input_size, in_channels=1, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
            recipe=FINETUNE, pretraining=MOCO_ARCHITECTURES[architecture.name],
            source=MOCO_SOURCE.format(paper=architecture.paper),
            cam_layer=architecture.cam_layer, cam_reshape=architecture.cam_reshape,
        ))

# The reference every learned model must beat: no learning, each test image takes the label of
# its nearest training image (cosine on 32x32 standardized pixels, mirror-aware). Its accuracy
# measures how much of a score the split's duplicated images give away for free.
register(ZooEntry(
    arch="knn", variant="pixels", builder=build_knn_pixels,
    input_size=64, in_channels=1, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
    recipe=Recipe(epochs=1, augment="none"),  # fitted in one pass; only val_fraction and seed matter
    source="raw-pixel 1-nearest-neighbour reference (brainbench): cosine similarity of 32x32 standardized "
           "pixels, mirrored matches allowed",
))

# --- segmentation: the three U-Nets of the classification-and-segmentation study ---------------

UNET_SOURCE = ("classification-and-segmentation study's {kind} U-Net, n_filters = {n_filters}; one grey input "
               "channel and one tumour-mask output here (the study counts 4 inputs and 3 outputs)")
# The study's counts at n_filters = 16 for 4 input and 3 output channels (`brainbench list` prints
# ours in that configuration beside them; README: where and why they differ).
UNET_STUDY_PARAMS = {"classic_unet": 1_375_043, "improved_unet": 799_075, "attention_unet": 843_319}
UNET_KINDS = {"classic_unet": "classic", "improved_unet": "improved", "attention_unet": "attention"}
UNET_N_FILTERS = 16
# Adam at 1e-3 with a cosine schedule, as for the classifiers from scratch; 128 px keeps a CPU epoch
# over figshare's ~2,000 training slices in minutes.
SEGMENTATION_RECIPE = Recipe(optimizer="adam", lr=1e-3, epochs=20, batch_size=16, scheduler="cosine")


def _unet_builder(arch: str, n_filters: int, *, num_classes: int, in_channels: int, input_size: int,
                  dropout: float | None):
    # The U-Nets are fully convolutional: any input side divisible by 16 works, so input_size only
    # decides the data; they have no dropout.
    return build_unet(arch, in_channels=in_channels, num_classes=num_classes, n_filters=n_filters)


for unet in UNET_ARCHS:
    register(ZooEntry(
        arch=unet, variant="scratch", builder=partial(_unet_builder, unet, UNET_N_FILTERS),
        input_size=128, in_channels=1, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
        recipe=SEGMENTATION_RECIPE, num_classes=1, task="segmentation",
        study_count=StudyCount(UNET_STUDY_PARAMS[unet], in_channels=4, num_classes=3),
        source=UNET_SOURCE.format(kind=UNET_KINDS[unet], n_filters=UNET_N_FILTERS),
    ))
