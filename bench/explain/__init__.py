"""`brainbench explain`: where a trained classifier looks, as class-activation maps and feature maps.

- cam.py: the class-activation methods (pytorch-grad-cam's), the layer they hook, the maps;
- feature_maps.py: the first channels of each convolution block's output;
- pictures.py: the overlay and feature-map sheet PNGs;
- images.py: all of it for a list of image files, one result per file.
"""

from bench.errors import BrainbenchError


class ExplainError(BrainbenchError):
    """An entry, layer or method that cannot be explained as asked; the message says why and what works."""
