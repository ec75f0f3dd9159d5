# ruff: noqa: F821  (the child kernel binds `df`)
import matplotlib.pyplot as plt

revenue = df["revenue"]  # no such column
plt.bar(df["city"], revenue)
