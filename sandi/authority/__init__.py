"""The authority: the province's key authority over the registry.

Modules, from the bottom up: :mod:`~sandi.authority.validity` (when a certificate may sign,
be encrypted to, open), :mod:`~sandi.authority.certs` and :mod:`~sandi.authority.crl`
(X.509 issuance and revocation lists), :mod:`~sandi.authority.lookup` and
:mod:`~sandi.authority.records` (reading agencies and certificates),
:mod:`~sandi.authority.agencies`, :mod:`~sandi.authority.issuance`,
:mod:`~sandi.authority.lifecycle`, :mod:`~sandi.authority.revocation`,
:mod:`~sandi.authority.enrolment` and :mod:`~sandi.authority.online` (the changes), and the
key movement modules (:mod:`~sandi.authority.export`, :mod:`~sandi.authority.imports`,
:mod:`~sandi.authority.backup`, :mod:`~sandi.authority.rollover`).

Invariants:

* every change runs in one registry transaction together with its audit entry
  (:func:`sandi.authority.events.record`); a failure changes nothing;
* the root key signs through the key store's signer (file, keyring or PKCS#11 token); no
  module here holds a raw root key longer than one operation;
* nothing here imports the directory, the documents or the command line (layers point down).
"""
