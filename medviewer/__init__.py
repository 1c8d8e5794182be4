"""MedViewer: a desktop medical image viewer with AI assistance.

Research and demonstration software, not for clinical use.
"""
__version__ = "0.1.0"
