"""DenseCap (Johnson, Karpathy, Fei-Fei, CVPR 2016) dense captioning from the released Torch7 checkpoint, run
with torch: VGG-16 conv layers -> localization layer -> recognition network -> LSTM language model."""

from models.densecap.model import DenseCapModel

__all__ = ["DenseCapModel"]
