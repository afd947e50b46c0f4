"""One run of a process: its settings (``config``), the run itself (``simulate``), the refusal
of non-finite values and the warnings about a finished run.
"""
