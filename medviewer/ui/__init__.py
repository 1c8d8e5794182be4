"""Qt user interface (PySide6, pyqtgraph, VTK): the only layer allowed to import them."""
