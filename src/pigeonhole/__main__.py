"""``python -m pigeonhole``: the same as the ``pigeonhole`` command."""

from pigeonhole.cli.main import main

if __name__ == "__main__":
    main()
