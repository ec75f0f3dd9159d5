# Makes stopping hard: ignores SIGTERM/SIGINT, a non-daemon thread, an atexit sleep,
# and a child in its own session that ignores signals too.
import atexit
import os
import signal
import threading
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
atexit.register(time.sleep, 3600)
threading.Thread(target=time.sleep, args=(3600,)).start()
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(3600)
    os._exit(0)
print("ready")
