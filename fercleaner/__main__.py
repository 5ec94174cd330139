"""`python -m fercleaner` (and `torchrun -m fercleaner score ...`) run the CLI."""

from fercleaner.cli import main

main()
