"""Analysis: what runs learned, as numbers, charts and reports.

Modules: `evaluate` (scores of a run on images), `inspection` (a run's own splits, mistakes,
disagreements), `gradcam` (feature maps and Grad-CAM), `compare` (tables of runs), `ladder` (the
lecture's five steps beside the book's figures), `charts` (plotly figures), `report` (HTML/Markdown).
"""
