# ruff: noqa: F821  (the child kernel binds `df`)
import plotly.express as px

fig = px.bar(df, x="city", y="sales")
fig.show()
