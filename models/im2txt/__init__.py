"""im2txt (Show and Tell) image captioning from tensorflow/models' TF1 checkpoint, run with torch.

Nothing is imported here: `family.py` (what the catalog validates) must load without torch; the model is
`models.im2txt.model.Im2txtModel`."""
