"""The Eulerian view solved on the grid: the Fokker–Planck / continuity solver and its
exact heat and Ornstein–Uhlenbeck steps (docs/MATH.md §6).
"""
