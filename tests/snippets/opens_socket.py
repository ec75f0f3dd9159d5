# Connects to a server the test listens with on the host's loopback.
import os
import socket

port = int(os.environ["VISCODER_TEST_PORT"])
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    print("connected")
except OSError as exc:
    print("refused:", type(exc).__name__)
print("interfaces:", sorted(name for _, name in socket.if_nameindex()))
