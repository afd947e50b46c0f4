"""Learned fields: the MLP, its training (denoising score matching, conditional flow
matching; docs/MATH.md §9) and its safetensors checkpoints.
"""
