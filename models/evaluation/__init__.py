"""Measuring samples: sliced W2 and MMD against their noise floor, the quality of a
field's samples, the share of samples that memorize training points (docs/MATH.md §7).
"""
