# ruff: noqa: F821  (the child kernel binds `df`)
import matplotlib.pyplot as plt

fig, ax = plt.subplots()
ax.bar(df["city"], df["sales"])
ax.set_title("Sales by city")
plt.show()
