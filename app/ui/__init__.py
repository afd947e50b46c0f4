"""The page: the views, the sidebar, the notice and the assembly of one session (main.py)."""
