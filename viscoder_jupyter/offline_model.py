"""`python -m viscoder_jupyter.offline_model`: the command that messages, README and BENCHMARKS.md name.

The code lives in `viscoder_jupyter.tools.offline_model` (also `viscoder prepare-model`).
"""

if __name__ == "__main__":
    import sys

    from viscoder_jupyter.tools.offline_model import main

    sys.exit(main())
