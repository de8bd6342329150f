"""sandi: the persandian toolkit of a provincial government.

A key authority for the province's agencies, sealed official documents (age v1
encryption of a tar of the document and its minisign signature, X.509
certificates), the communication-pattern policy (PHKS) and a tamper-evident
audit log.

Importing ``sandi`` is cheap: the heavy parts (SQLAlchemy, keyring) load only
when the function that needs them is called.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
