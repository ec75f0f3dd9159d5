# Tries to write where plotting code never should; prints what happened to each.
import os

results = {}
for path in [
    "/etc/viscoder-was-here",
    os.path.expanduser("~/viscoder-was-here"),
    os.environ["VISCODER_TEST_TARGET"],
    "in-scratch.txt",
]:
    try:
        with open(path, "w") as f:
            f.write("x")
        results[path] = "written"
    except OSError as exc:
        results[path] = type(exc).__name__
print(results)
