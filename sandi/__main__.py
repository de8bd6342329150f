"""``python -m sandi`` runs the command line (the library itself never imports click)."""

import importlib

if __name__ == "__main__":
    importlib.import_module("sandi_cli.main").main()
