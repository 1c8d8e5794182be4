"""AI assistance: model registry, inference, training. torch and scikit-learn are imported
lazily, inside functions, so that importing this package stays cheap."""
