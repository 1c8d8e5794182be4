"""LabelSurfaces: every visible label map as coloured surfaces on a renderer, kept up to date by
re-meshing only what an edit touched; thresholded heat maps as surfaces too.

    surf = LabelSurfaces(renderer)
    surf.set_volume(volume)          # the grid: spacing for the meshes, grid_to_world for the actors
    surf.set_label_maps([labels])    # follows labels.changed(region), table_changed, display_changed
    labels.paint(region, mask, 1)    # marks the (label, brick) pairs the edit may have changed
    if surf.pending(): surf.flush()  # re-meshes those pairs only (the widget calls it on a timer)

A label map is cut into bricks (label_mesher.BrickGrid) and each (label value, brick) pair that holds
the label has its own actor; the actors of one label share one vtkProperty, so colour, opacity and
visibility change without re-meshing. An edit's region names the bricks it touched; in each, the
labels to re-mesh are those present in the region now plus those whose voxel count in the brick
changed (a label painted over or erased): between them they cover every label whose voxels there
differ from what was meshed. A label gone from a brick loses that brick's actor. Point normals
are summed over the bricks that share a seam point, so shading runs on across the cut faces
(the bricks' normals equal those of the merged mesh).

Opacity: the 2D views fill a label at `label.opacity` (0.5 by default) over the image; in 3D a
surface at the default is opaque (as in 3D Slicer, whose 2D fill is 0.5 and 3D opacity 1), so a
surface's opacity is map.opacity * min(1, label.opacity / 0.5) — turning a label down in the
label panel fades its surface too, and 0 hides it.
"""
from __future__ import annotations

import time
from dataclasses import fields
from itertools import product

import numpy as np

from medviewer.core.colormaps import colour_table
from medviewer.core.errors import MedViewerError
from medviewer.core.labels import Label, palette_colour
from medviewer.ui.view3d.label_mesher import (BRICK, BrickGrid, brick_counts, isosurface, mesh_block, normal_sums,
                                              seam_points, set_normals)
from medviewer.ui.view3d.vtk_bridge import grid_to_world, setup

_NEIGHBOURS = [o for o in product((-1, 0, 1), repeat=3) if any(o)]  # bricks sharing a face, edge or corner
DEFAULT_FILL = next(f.default for f in fields(Label) if f.name == "opacity")
WHOLE = (slice(None),) * 3


def surface_opacity(labelmap, label: Label | None) -> float:
    """The 3D opacity of a label's surface (see the module docstring)."""
    fill = DEFAULT_FILL if label is None else label.opacity
    return float(labelmap.opacity) * min(1.0, max(fill, 0.0) / DEFAULT_FILL)


def _actor(polydata, prop, matrix):
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper
    mapper = vtkPolyDataMapper()
    mapper.ScalarVisibilityOff()
    mapper.SetInputData(polydata)
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    actor.SetUserMatrix(matrix)
    return actor


class _MapSurfaces:
    """One label map's brick meshes and actors, and the edits not meshed yet."""

    def __init__(self, owner: "LabelSurfaces", labelmap):
        self.owner, self.map = owner, labelmap
        self.grid = BrickGrid(labelmap.data.shape, owner.brick)
        self.counts: dict = {}  # brick -> label counts at the last look
        self.regions: list = [WHOLE]  # edits not looked at yet
        self.dirty: dict = {}  # (value, brick) -> None, in order
        self.actors: dict = {}  # (value, brick) -> vtkActor
        self.triangles: dict = {}  # (value, brick) -> triangle count
        self.properties: dict = {}  # value -> vtkProperty shared by that label's actors
        self.normals: dict = {}  # (value, brick) -> its mesh's own normal sums
        self.seams: dict = {}  # (value, brick) -> (ids, keys) of its points on the cut faces
        self.shared: dict = {}  # (value, brick) -> {neighbour key: (my ids, its ids)} same points
        labelmap.changed.connect(self.on_changed)
        labelmap.table_changed.connect(self.restyle)
        labelmap.display_changed.connect(self.restyle)

    def close(self) -> None:
        self.map.changed.disconnect(self.on_changed)
        self.map.table_changed.disconnect(self.restyle)
        self.map.display_changed.disconnect(self.restyle)
        for key in list(self.actors):
            self._drop(key)

    def on_changed(self, region) -> None:
        self.regions.append(region)

    def remesh_all(self) -> None:
        self.counts.clear()
        self.regions = [WHOLE]

    def pending(self) -> bool:
        return bool(self.regions or self.dirty)

    def _mark(self) -> None:
        """Turn the pending edit regions into (label, brick) pairs to re-mesh."""
        data = self.map.data
        regions, self.regions = self.regions, []
        for region in regions:
            for brick in self.grid.touching(region):
                new = brick_counts(data, self.grid, brick)
                old = self.counts.get(brick)
                changed = set(np.flatnonzero(new if old is None else new != old).tolist())
                voxels = self.grid.voxels(brick)
                inside = tuple(slice(max(r.indices(n)[0], v.start), min(r.indices(n)[1], v.stop))
                               for r, v, n in zip(region, voxels, data.shape))
                if inside != voxels:  # the labels in the edited part of the brick, now
                    changed.update(np.flatnonzero(np.bincount(data[inside].ravel(), minlength=256)).tolist())
                changed.discard(0)
                self.counts[brick] = new
                for value in sorted(changed):
                    self.dirty[(value, brick)] = None

    def remesh(self, deadline: float | None) -> int:
        """Re-mesh the dirty pairs (until the deadline, a perf_counter time); returns how many."""
        self._mark()
        done, block_of = 0, {}
        data, spacing = self.map.data, self.owner.spacing
        for key in sorted(self.dirty, key=lambda k: k[1]):  # a brick's labels share its block
            if deadline is not None and done and time.perf_counter() > deadline:
                break
            del self.dirty[key]
            value, brick = key
            surface = None
            if self.counts[brick][value]:
                if brick not in block_of:
                    block_of = {brick: self.grid.block(data, brick)}
                block, first = block_of[brick]
                surface = mesh_block(block, first, value, spacing)
                done += 1
            if surface is None:
                self._drop(key)
            else:
                self._show(key, surface)
        return done

    def _show(self, key, surface) -> None:
        before = self._unseam(key, reshade=False)
        actor = self.actors.get(key)
        if actor is None:
            actor = _actor(surface, self._property(key[0]), self.owner.matrix)
            self.actors[key] = actor
            self.owner.renderer.AddActor(actor)
            self._style_actor(key[0], actor)
        else:
            actor.GetMapper().SetInputData(surface)
        self.triangles[key] = surface.GetNumberOfPolys()
        self.normals[key] = normal_sums(surface)
        self.seams[key] = seam_points(surface, self.grid, key[1], self.owner.spacing)
        self.shared[key] = {}
        value, brick = key
        for offset in _NEIGHBOURS:
            other = (value, tuple(b + o for b, o in zip(brick, offset)))
            if other in self.seams:
                _, mine, theirs = np.intersect1d(self.seams[key][1], self.seams[other][1], assume_unique=True,
                                                 return_indices=True)
                if mine.size:
                    self.shared[key][other] = (self.seams[key][0][mine], self.seams[other][0][theirs])
                    self.shared[other][key] = (self.seams[other][0][theirs], self.seams[key][0][mine])
        self._shade(key, new=True)
        for each in {*self.shared[key], *before} - {key}:
            self._shade(each)

    def _shade(self, key, new: bool = False) -> None:
        """Point normals of one brick's mesh, its seam points' taken over every brick sharing them
        (so that shading runs on across the cut faces). A mesh already shaded gets only its seam
        points' normals rewritten."""
        surface = self.actors[key].GetMapper().GetInput()
        if new:
            sums = self.normals[key].copy()
            for other, (mine, theirs) in self.shared[key].items():
                sums[mine] += self.normals[other][theirs]
            set_normals(surface, sums)
            return
        from vtkmodules.util.numpy_support import vtk_to_numpy
        ids = self.seams[key][0]
        sums = self.normals[key][ids]
        for other, (mine, theirs) in self.shared[key].items():
            sums[np.searchsorted(ids, mine)] += self.normals[other][theirs]
        array = surface.GetPointData().GetNormals()
        vtk_to_numpy(array)[ids] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-30)
        array.Modified()
        surface.Modified()

    def _unseam(self, key, reshade: bool = True) -> list:
        """Forget a mesh's seams (its neighbours then shade without it); returns those neighbours."""
        neighbours = list(self.shared.pop(key, {}))
        for other in neighbours:
            del self.shared[other][key]
            if reshade:
                self._shade(other)
        self.normals.pop(key, None)
        self.seams.pop(key, None)
        return neighbours

    def _drop(self, key) -> None:
        self._unseam(key)
        actor = self.actors.pop(key, None)
        self.triangles.pop(key, None)
        if actor is not None:
            self.owner.renderer.RemoveActor(actor)

    def _property(self, value: int):
        prop = self.properties.get(value)
        if prop is None:
            from vtkmodules.vtkRenderingCore import vtkProperty
            prop = self.properties[value] = vtkProperty()
            self._style(value)
        return prop

    def _style(self, value: int) -> bool:
        """Colour and opacity of a label's property; returns whether its surfaces show."""
        label = self.map.table.get(value)
        colour = label.colour if label is not None else palette_colour(value)
        opacity = surface_opacity(self.map, label)
        prop = self.properties[value]
        prop.SetColor(*(c / 255.0 for c in colour))
        prop.SetOpacity(opacity)
        return bool(self.map.visible and (label is None or label.visible) and opacity > 0)

    def _style_actor(self, value: int, actor) -> None:
        actor.SetVisibility(self._style(value))

    def restyle(self) -> None:
        shown = {value: self._style(value) for value in self.properties}
        for (value, _brick), actor in self.actors.items():
            actor.SetVisibility(shown[value])

    def set_matrix(self, matrix) -> None:
        for actor in self.actors.values():
            actor.SetUserMatrix(matrix)


class _HeatSurface:
    """A heat map's surface at its threshold, coloured by its colour map at the mean value it
    encloses (so a stronger finding reads brighter); re-meshed when the threshold moves."""

    def __init__(self, owner: "LabelSurfaces", heatmap):
        from vtkmodules.vtkRenderingCore import vtkProperty
        self.owner, self.map = owner, heatmap
        self.meshed_at: float | None = None
        self.actor = None
        self.triangles = 0
        self.prop = vtkProperty()
        self._mean: tuple[float, float] | None = None
        self.problem: str | None = None
        heatmap.display_changed.connect(self.restyle)
        self.restyle()

    def close(self) -> None:
        self.map.display_changed.disconnect(self.restyle)
        self._drop()

    def remesh_all(self) -> None:
        self.meshed_at = None

    def pending(self) -> bool:
        return self.meshed_at != self.map.threshold

    def remesh(self) -> int:
        level = self.map.threshold
        self.meshed_at = level
        self._drop()
        self.problem = None
        try:
            surface = isosurface(self.map.data, level, self.owner.spacing)
        except MedViewerError as exc:  # too large to copy here: no surface, and the reason
            self.problem = f"heat map {self.map.name!r}: no 3D surface ({exc})"
            return 0
        if surface is None:
            return 0
        self.actor = _actor(surface, self.prop, self.owner.matrix)
        self.triangles = surface.GetNumberOfPolys()
        self.owner.renderer.AddActor(self.actor)
        self.restyle()
        return 1

    def _drop(self) -> None:
        if self.actor is not None:
            self.owner.renderer.RemoveActor(self.actor)
        self.actor, self.triangles = None, 0

    def _enclosed_mean(self) -> float:
        """Mean map value at or above the threshold (cached per threshold: a slider drag of the
        opacity must not scan the map each time)."""
        heat = self.map
        if self._mean is None or self._mean[0] != heat.threshold:
            above = heat.data[heat.data >= heat.threshold]
            self._mean = (heat.threshold, float(above.mean()) if above.size else heat.threshold)
        return self._mean[1]

    def restyle(self) -> None:
        heat = self.map
        index = int(heat.indices(np.asarray([self._enclosed_mean()]))[0])
        self.prop.SetColor(*(c / 255.0 for c in colour_table(heat.colormap)[index]))
        self.prop.SetOpacity(heat.opacity)
        if self.actor is not None:
            self.actor.SetVisibility(bool(heat.visible and heat.opacity > 0))

    def set_matrix(self, matrix) -> None:
        if self.actor is not None:
            self.actor.SetUserMatrix(matrix)


class LabelSurfaces:
    """The label-map and heat-map surfaces of one renderer (API in the module docstring)."""

    def __init__(self, renderer, brick: int = BRICK):
        """brick: the edge of a brick in voxels (label_mesher.BRICK; smaller in tests)."""
        setup()
        self.renderer = renderer
        self.brick = int(brick)
        self.volume = None
        self.spacing = (1.0, 1.0, 1.0)
        from vtkmodules.vtkCommonMath import vtkMatrix4x4
        self.matrix = vtkMatrix4x4()
        self._maps: list[_MapSurfaces] = []
        self._heat: list[_HeatSurface] = []
        self.last_update_ms = 0.0
        self._remeshed = 0

    def set_volume(self, volume) -> None:
        """The image grid the maps lie on; a new spacing re-meshes everything."""
        self.volume = volume
        spacing = tuple(float(s) for s in volume.spacing) if volume is not None else (1.0, 1.0, 1.0)
        if volume is not None:
            self.matrix = grid_to_world(volume)
        if spacing != self.spacing:
            self.spacing = spacing
            for part in self._maps + self._heat:
                part.remesh_all()
        for part in self._maps + self._heat:
            part.set_matrix(self.matrix)

    def _check_grid(self, layer, what: str) -> None:
        if self.volume is not None and tuple(layer.data.shape) != tuple(self.volume.shape[:3]):
            raise MedViewerError(f"{what} {getattr(layer, 'name', '')!r} has shape {tuple(layer.data.shape)}, "
                                 f"not the image's {tuple(self.volume.shape[:3])}: no 3D surface for it")

    def set_label_maps(self, maps) -> None:
        """Show these label maps (subscribing to them), dropping the ones shown before; a map kept
        keeps its meshes."""
        self._maps = self._follow(self._maps, maps, "label map", _MapSurfaces)

    def set_heatmaps(self, heatmaps) -> None:
        self._heat = self._follow(self._heat, heatmaps, "heat map", _HeatSurface)

    def _follow(self, parts: list, layers, what: str, make) -> list:
        for layer in layers:
            self._check_grid(layer, what)
        kept = {id(part.map): part for part in parts}
        for part in parts:
            if all(part.map is not layer for layer in layers):
                part.close()
        return [kept.get(id(layer)) or make(self, layer) for layer in layers]

    def pending(self) -> bool:
        return any(part.pending() for part in self._maps + self._heat)

    def flush(self, budget_ms: float | None = None) -> int:
        """Re-mesh what edits made dirty; with budget_ms, stop after about that long and leave
        the rest pending (the caller's timer comes back). Returns the pairs re-meshed."""
        start = time.perf_counter()
        deadline = None if budget_ms is None else start + budget_ms / 1000.0
        done = 0
        for part in self._heat:
            if part.pending():
                done += part.remesh()
        for part in self._maps:
            if deadline is not None and done and time.perf_counter() > deadline:
                break
            done += part.remesh(deadline)
        self._remeshed = done
        self.last_update_ms = (time.perf_counter() - start) * 1000.0
        return done

    def problems(self) -> list[str]:
        """Why a layer has no surface (one line each), for the view to show."""
        return [part.problem for part in self._heat if part.problem]

    def actors(self) -> list:
        out = [a for part in self._maps for a in part.actors.values()]
        return out + [part.actor for part in self._heat if part.actor is not None]

    def label_actors(self, labelmap, value: int) -> list:
        """The actors of one label of one map (one per brick that holds it)."""
        return [a for part in self._maps if part.map is labelmap
                for (v, _b), a in part.actors.items() if v == value]

    def stats(self) -> dict:
        bricks = {(id(part), b) for part in self._maps for (_v, b) in part.actors}
        triangles = sum(sum(part.triangles.values()) for part in self._maps)
        return {"bricks": len(bricks), "surfaces": len(self.actors()), "remeshed": self._remeshed,
                "triangles": triangles + sum(part.triangles for part in self._heat)}

    def close(self) -> None:
        for part in self._maps + self._heat:
            part.close()
        self._maps, self._heat = [], []
