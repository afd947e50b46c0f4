"""Learned fields: the MLP, its training (denoising score matching, conditional flow
matching; docs/MATH.md §9), its class-conditional form (label dropout, for classifier-free
guidance; ``conditional.py`` measures how well it keeps to a class) and its safetensors
checkpoints.
"""
