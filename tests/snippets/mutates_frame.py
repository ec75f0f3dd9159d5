# ruff: noqa: F821  (the child kernel binds `df`)
df.drop(columns=["sales"], inplace=True)
df["extra"] = 1
df.loc[0, "city"] = "Nowhere"
