"""Two runs compared on the same noise (docs/MATH.md §11)."""
