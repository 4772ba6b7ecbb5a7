"""``python -m physground`` runs the command line."""

from physground.cli import main

main()
