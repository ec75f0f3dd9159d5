# Prints about 1 MB at a time, forever.
line = "flood " * 170_000
while True:
    print(line)
