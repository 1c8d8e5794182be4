"""Training of the models that ship (torch/MONAI work lives in medviewer.ai.backends, imported lazily)."""
from medviewer.ai.training.classification import discover_classes, patient_id, patient_split, train_classification

__all__ = ["discover_classes", "patient_id", "patient_split", "train_classification"]
