"""DenseCap (Johnson, Karpathy, Fei-Fei, CVPR 2016) dense captioning from the released Torch7 checkpoint, run
with torch: VGG-16 conv layers -> localization layer -> recognition network -> LSTM language model.

Nothing is imported here: `family.py` (what the catalog validates) must load without torch; the model is
`models.densecap.model.DenseCapModel`."""
