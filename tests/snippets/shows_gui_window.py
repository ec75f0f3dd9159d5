# ruff: noqa: F821  (the child kernel binds `df`)
# Asks for a desktop window: plt.show() would block until someone closes it.
import matplotlib

matplotlib.use("TkAgg")
import matplotlib.pyplot as plt

plt.bar(df["city"], df["sales"])
plt.show()
