"""Sealed documents and detached signatures: the workflows over the format layer.

Invariants (see docs/format.md, section 3):

* these workflows read public data only from the home's signed directory and
  private keys only from its key store: they never touch the registry (nor import
  SQLAlchemy), so they run the same on an authority and on a workstation;
* the policy is a required argument of ``seal`` and ``open_sealed``: pass
  :class:`DirectoryPolicy` (the policy in force, from the directory) or, knowingly,
  :class:`UnsafeNoPolicyCheck`;
* ``seal`` checks sender, recipients, certificates, policy and metadata size before it
  writes a byte; ``open_sealed`` releases the document (renames it into place) only
  after every check passed; on failure no output file is left behind;
* every outcome (sealed, opened, refused by policy, failed verification) is written
  to the home's audit journal; if that write fails, the operation fails.
"""

from sandi.documents.circular import circular_recipients, read_recipient_list
from sandi.documents.detached import SignResult, VerifyResult, sign, verify
from sandi.documents.inspect import InspectResult, inspect
from sandi.documents.metadata import MAX_RECIPIENTS, SealMetadata, SignMetadata
from sandi.documents.open import OpenResult, open_sealed
from sandi.documents.policygate import DirectoryPolicy, PolicyGate, UnsafeNoPolicyCheck
from sandi.documents.seal import SealResult, seal
from sandi.documents.workspace import Workspace

__all__ = [
    "MAX_RECIPIENTS",
    "DirectoryPolicy",
    "InspectResult",
    "OpenResult",
    "PolicyGate",
    "SealMetadata",
    "SealResult",
    "SignMetadata",
    "SignResult",
    "UnsafeNoPolicyCheck",
    "VerifyResult",
    "Workspace",
    "circular_recipients",
    "inspect",
    "open_sealed",
    "read_recipient_list",
    "seal",
    "sign",
    "verify",
]
