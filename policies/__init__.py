"""The policy files sandi ships (installed as ``sandi_policies`` so ``sandi demo`` finds them)."""
