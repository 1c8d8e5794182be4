"""The 3D view (issue 13): VTK volume rendering, label surfaces, MPR planes in 3D, picking.

VTK is imported only inside this package's modules, and only when a 3D view is made (importing it
costs about a second): nothing here is imported by `medviewer.ui` itself.

    vtk_bridge          lazy VTK setup, numpy <-> vtkImageData, grid_to_world, opengl_problem()
    transfer_functions  Slicer's volume-rendering presets and the opacity-ramp editor
    scene               Scene3D: one vtkRenderer with everything 3D, usable without Qt
    label_surfaces      LabelSurfaces: incremental label-map surfaces
    surface_export      label surfaces to STL/OBJ/PLY in world coordinates
    view_widget         View3D: the Qt widget that hosts a Scene3D
"""
