# ruff: noqa: F821  (the child kernel binds `df`)
import matplotlib.pyplot as plt

print(f"rows: {len(df)}")
df.plot.bar(x="city", y="sales")
plt.show()
