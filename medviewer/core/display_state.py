"""How a layer is shown (visible, opacity, and per-kind settings such as a heat map's colour map),
kept on the layer itself with an event, so every view and panel mirrors one state (napari's layer
events): a view that is rebuilt reads it back instead of forgetting it.

    layer.set_display(visible=False)     # emits layer.display_changed()
"""
from __future__ import annotations

from medviewer.core.events import Event


class DisplayState:
    DISPLAY_FIELDS: tuple[str, ...] = ("visible", "opacity")

    def __init__(self, visible: bool = True, opacity: float = 1.0) -> None:
        self.visible = bool(visible)
        self.opacity = _opacity(opacity)
        self.display_changed = Event()  # () after any display setting changed

    def set_display(self, **settings) -> None:
        changed = False
        for key, value in settings.items():
            if key not in self.DISPLAY_FIELDS:
                raise AttributeError(f"{type(self).__name__} has no display setting {key!r}")
            value = self._checked(key, value)
            if getattr(self, key) != value:
                setattr(self, key, value)
                changed = True
        if changed:
            self.display_changed.emit()

    def _checked(self, key: str, value):
        """Validate one setting (subclasses add theirs); returns the value to store."""
        if key == "visible":
            return bool(value)
        if key == "opacity":
            return _opacity(value)
        return value


def _opacity(value) -> float:
    return min(max(float(value), 0.0), 1.0)


class ImageDisplay(DisplayState):
    """The image layer's visibility and opacity (its window lives on the Session)."""
