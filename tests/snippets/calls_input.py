column = input("Which column? ")
