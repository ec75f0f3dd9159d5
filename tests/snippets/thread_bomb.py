# Starts sleeping threads until the process cannot start one more.
import threading
import time

while True:
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
