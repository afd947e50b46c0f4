"""Numerics of flowscope: Gaussian probability paths, exact fields, samplers and densities.

One time convention everywhere (docs/MATH.md §1): t = 0 is data, t = 1 is noise.
Nothing in this package imports a UI library.
"""
