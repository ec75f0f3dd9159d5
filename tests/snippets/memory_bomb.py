# Keeps allocating (and touching) 256 MiB blocks until something stops it.
blocks = []
while True:
    blocks.append(bytearray(256 * 2**20))
