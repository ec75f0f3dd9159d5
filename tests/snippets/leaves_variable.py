# ruff: noqa: F821  (the child kernel binds `df`)
import matplotlib.pyplot as plt

leftover = df["sales"].max()
plt.rcParams["lines.linewidth"] = 7
