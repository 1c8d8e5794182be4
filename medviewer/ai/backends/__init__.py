"""Framework-specific code (torch, MONAI, scikit-learn); imported only when a model runs."""
