# A scatter plot of 10^6 points must still come back as a PNG in time.
import matplotlib.pyplot as plt
import numpy as np

rng = np.random.default_rng(0)
x, y = rng.normal(size=(2, 1_000_000))
plt.figure(figsize=(6, 4))
plt.scatter(x, y, s=1, alpha=0.2)
plt.show()
