# ruff: noqa: F821  (the child kernel binds `df`)
summary = df.describe()
