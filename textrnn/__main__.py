"""`python -m textrnn COMMAND`, the same as the `textrnn` command."""

from textrnn.cli import main

if __name__ == "__main__":
    main()
