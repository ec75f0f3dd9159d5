# Looks for credentials in the environment.
import os

print(sorted(k for k in os.environ if "VISCODER_TEST" in k))
print(os.environ.get("VISCODER_TEST_API_TOKEN", "<no token>"))
