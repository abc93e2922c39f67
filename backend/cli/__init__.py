"""One module per command of ``python -m backend``: ``add_arguments(parser)`` and ``main(args)``."""
