"""Performance code, out of the reading path: the exact field's and the PDE's compiled
kernels, and a run's independent parts on threads. Same numbers as the plain code.
"""
